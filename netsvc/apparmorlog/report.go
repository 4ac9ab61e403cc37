package apparmorlog

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Filter selects denials: by profile (DefaultProfiles when empty) and by
// time (records stamped before Since are skipped; records without an
// audit stamp are kept).
type Filter struct {
	Profiles []string
	Since    time.Time
}

// Keep reports whether d passes the filter.
func (f Filter) Keep(d Denial) bool {
	names := f.Profiles
	if len(names) == 0 {
		names = DefaultProfiles
	}
	if !MatchProfile(d.Profile, names) {
		return false
	}
	return f.Since.IsZero() || d.Time.IsZero() || !d.Time.Before(f.Since)
}

// Read parses every line of r and returns the denials that pass f, in
// log order. Lines longer than 1 MiB are an error; others never are.
func Read(r io.Reader, f Filter) ([]Denial, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var out []Denial
	type stamp struct {
		serial uint64
		ns     int64
	}
	seen := map[stamp]bool{}
	for sc.Scan() {
		d, ok := ParseLine(sc.Text())
		if !ok || !f.Keep(d) {
			continue
		}
		// journalctl and kern.log may show the same record twice (the
		// audit subsystem and printk); the serial tells them apart.
		if d.Serial != 0 {
			key := stamp{d.Serial, d.Time.UnixNano()}
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("apparmorlog: read log: %w", err)
	}
	return out, nil
}

// Group is the denials that one rule would fix.
type Group struct {
	Profile string
	Class   Class
	Key     string // path prefix, family, capability, peer or operation
	Rule    string // AppArmor rule that allows it; "" when a human must decide
	Count   int
	Example Denial
}

// Summary counts denials by profile and class and groups them by the
// rule that would fix them.
type Summary struct {
	Total   int
	ByClass map[Class]int
	// Counts is keyed by profile (child profiles folded into their
	// parent) and class: the series of mtls_app_armor_denials_total.
	Counts map[ProfileClass]int
	Groups []Group // most frequent first
}

// ProfileClass is one series of mtls_app_armor_denials_total.
type ProfileClass struct {
	Profile string
	Class   Class
}

// Summarize builds the Summary of ds.
func Summarize(ds []Denial) Summary {
	s := Summary{ByClass: map[Class]int{}, Counts: map[ProfileClass]int{}}
	idx := map[string]int{}
	for _, d := range ds {
		c := Classify(d)
		prof, _, _ := strings.Cut(d.Profile, "//")
		s.Total++
		s.ByClass[c]++
		s.Counts[ProfileClass{prof, c}]++
		rule := Rule(d)
		if prof != d.Profile {
			// A child profile's access is not the parent's to grant.
			rule = ""
		}
		gk := prof + "\x00" + string(c) + "\x00" + rule
		if rule == "" {
			gk += "\x00" + d.Operation + "\x00" + d.Name
		}
		i, ok := idx[gk]
		if !ok {
			i = len(s.Groups)
			idx[gk] = i
			s.Groups = append(s.Groups, Group{Profile: prof, Class: c, Key: groupKey(d, c), Rule: rule, Example: d})
		}
		s.Groups[i].Count++
	}
	sort.SliceStable(s.Groups, func(i, j int) bool { return s.Groups[i].Count > s.Groups[j].Count })
	return s
}

func groupKey(d Denial, c Class) string {
	switch c {
	case FileRead, FileWrite:
		return PathPrefix(d.Name)
	case NetworkBind, NetworkConnect, NetworkOther:
		return d.Family + " " + d.SockType
	case Capability:
		return d.CapName
	case Ptrace:
		return d.Peer
	}
	return d.Operation
}

// WriteText prints counts per class, then each distinct fix with its
// count and an example, then the rules alone, ready to paste into
// /etc/apparmor.d/local/<profile>.
func (s Summary) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%d denials\n", s.Total)
	for _, c := range Classes() {
		if n := s.ByClass[c]; n > 0 {
			fmt.Fprintf(w, "  %-16s %d\n", c, n)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCOUNT\tPROFILE\tCLASS\tWHAT\tRULE\tEXAMPLE")
	for _, g := range s.Groups {
		rule := g.Rule
		if rule == "" {
			rule = "(review by hand)"
		}
		ex := fmt.Sprintf("operation=%s comm=%s", g.Example.Operation, g.Example.Comm)
		if g.Example.Name != "" {
			ex += " name=" + g.Example.Name
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%q\n", g.Count, g.Profile, g.Class, g.Key, rule, ex)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("apparmorlog: write summary: %w", err)
	}
	byProfile := map[string][]string{}
	var profiles []string
	for _, g := range s.Groups {
		if g.Rule == "" {
			continue
		}
		if _, ok := byProfile[g.Profile]; !ok {
			profiles = append(profiles, g.Profile)
		}
		byProfile[g.Profile] = append(byProfile[g.Profile], g.Rule)
	}
	sort.Strings(profiles)
	for _, p := range profiles {
		rules := byProfile[p]
		sort.Strings(rules)
		fmt.Fprintf(w, "\n# rules for profile %s\n", p)
		for _, r := range rules {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	return nil
}
