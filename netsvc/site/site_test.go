package site

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string // substring of the error; "" for success
	}{
		{name: "one per line, comments and blanks skipped",
			in:   "# services\nkms.test.example\n\n  spiffe://test/ns/auth/sa/api  \r\n",
			want: []string{"kms.test.example", "spiffe://test/ns/auth/sa/api"}},
		{name: "common name", in: "billing-api\n", want: []string{"billing-api"}},
		{name: "no trailing newline", in: "a.example", want: []string{"a.example"}},
		{name: "empty", in: "", wantErr: "allow.txt: no client identity"},
		{name: "comments only", in: "# nobody\n\n", wantErr: "no client identity"},
		{name: "two names on a line", in: "a.example b.example\n", wantErr: "allow.txt:1:"},
		{name: "comma list", in: "ok.example\na.example,b.example\n", wantErr: "allow.txt:2:"},
		{name: "tab inside", in: "a\tb\n", wantErr: "allow.txt:1:"},
		{name: "control character", in: "a\x01b\n", wantErr: "no spaces, commas or control"},
		{name: "DEL", in: "a\x7fb\n", wantErr: "allow.txt:1:"},
		{name: "no-break space", in: "kms\u00a0test\n", wantErr: "allow.txt:1:"},
		{name: "byte order mark", in: "\ufeffkms.test.example\n", wantErr: "allow.txt:1:"},
		{name: "zero-width space", in: "kms\u200b.example\n", wantErr: "allow.txt:1:"},
		{name: "C1 control", in: "kms\u0085x\n", wantErr: "allow.txt:1:"},
		{name: "not UTF-8", in: "kms\xff.example\n", wantErr: "allow.txt:1:"},
		{name: "UTF-8 common name", in: "Zeiterfassung-Dienst-ö\n", want: []string{"Zeiterfassung-Dienst-ö"}},
		{name: "duplicate", in: "a.example\n# again\na.example\n", wantErr: "allow.txt:3: \"a.example\" listed twice"},
		{name: "too long", in: strings.Repeat("a", maxIdentity+1) + "\n", wantErr: "longer than 512"},
		{name: "longest", in: strings.Repeat("a", maxIdentity) + "\n", want: []string{strings.Repeat("a", maxIdentity)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAllowList("allow.txt", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	const id = "NTP_AUTHORITY_ID=time.test.example\n"
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "minimal", in: id, want: map[string]string{"NTP_AUTHORITY_ID": "time.test.example"}},
		{name: "everything",
			in: "# site\n; also a comment\n" + id + "NTP_STRATUM=2\nNTP_REFERENCE_ADDRESS = 192.0.2.7\nREFRESH_INTERVAL_SECS=\"30\"\n" +
				"TIMENODED_OPTS=\"--serial /dev/ttyS1 --pps=/dev/pps0 --baud 115200 -v --require-client-cert=true --lock-threshold 200us --nmea-only-stratum 3\"\n",
			want: map[string]string{"NTP_AUTHORITY_ID": "time.test.example", "NTP_STRATUM": "2", "NTP_REFERENCE_ADDRESS": "192.0.2.7",
				"REFRESH_INTERVAL_SECS": "30", "TIMENODED_OPTS": "--serial /dev/ttyS1 --pps=/dev/pps0 --baud 115200 -v --require-client-cert=true --lock-threshold 200us --nmea-only-stratum 3"}},
		{name: "integrity options",
			in: id + "TIMENODED_OPTS=\"--integrity enforce --oscillator xo --witness-nts time.example:4460 --witness-nts=[2001:db8::1]:4460 --oscillator=wfm=0.01,rw=0.0005\"\n",
			want: map[string]string{"NTP_AUTHORITY_ID": "time.test.example",
				"TIMENODED_OPTS": "--integrity enforce --oscillator xo --witness-nts time.example:4460 --witness-nts=[2001:db8::1]:4460 --oscillator=wfm=0.01,rw=0.0005"}},
		{name: "unknown oscillator", in: id + "TIMENODED_OPTS=--oscillator=ocxo\n", wantErr: "--oscillator=ocxo: unknown oscillator class"},
		{name: "oscillator without noise", in: id + "TIMENODED_OPTS=--oscillator drift=1\n", wantErr: "no white FM"},
		{name: "NTS witness without port", in: id + "TIMENODED_OPTS=--witness-nts time.example\n", wantErr: "--witness-nts=time.example: want HOST:PORT"},
		{name: "NTS witness port 0", in: id + "TIMENODED_OPTS=--witness-nts time.example:0\n", wantErr: "port \"0\" is not a number from 1 to 65535"},
		{name: "private NTS CA", in: id + "TIMENODED_OPTS=--witness-nts-ca /tmp/ca.pem\n", wantErr: "--witness-nts-ca is not a board setting: put the file in the bundle as witness-ca.pem"},
		{name: "metrics CA path", in: id + "TIMENODED_OPTS=--metrics-client-ca=/tmp/ca.pem\n", wantErr: "--metrics-client-ca is not a board setting: put the file in the bundle as metrics-ca.pem"},
		{name: "empty options", in: id + "TIMENODED_OPTS=\"\"\n", want: map[string]string{"NTP_AUTHORITY_ID": "time.test.example", "TIMENODED_OPTS": ""}},
		{name: "no authority", in: "NTP_STRATUM=1\n", wantErr: "site.env: NTP_AUTHORITY_ID is required"},
		{name: "empty file", in: "", wantErr: "NTP_AUTHORITY_ID is required"},
		{name: "unknown key", in: id + "NTP_SIGNING_KEY_PATH=/tmp\n", wantErr: "site.env:2: NTP_SIGNING_KEY_PATH is not a site setting"},
		{name: "no equals", in: id + "NTP_STRATUM\n", wantErr: "site.env:2: want KEY=VALUE"},
		{name: "set twice", in: id + id, wantErr: "site.env:2: NTP_AUTHORITY_ID set twice"},
		{name: "dollar", in: "NTP_AUTHORITY_ID=$HOST\n", wantErr: "site.env:1: NTP_AUTHORITY_ID: quotes, backslashes and $"},
		{name: "single quotes", in: "NTP_AUTHORITY_ID='a.example'\n", wantErr: "quotes, backslashes"},
		{name: "continuation", in: "TIMENODED_OPTS=-v \\\n" + id, wantErr: "site.env:1:"},
		{name: "unbalanced quote", in: "NTP_AUTHORITY_ID=\"a.example\n", wantErr: "quotes"},
		{name: "bad authority", in: "NTP_AUTHORITY_ID=time_test.example\n", wantErr: "want a DNS name"},
		{name: "authority trailing dot", in: "NTP_AUTHORITY_ID=time.example.\n", wantErr: "empty or over-long label"},
		{name: "authority hyphen at label end", in: "NTP_AUTHORITY_ID=time-.example\n", wantErr: "want a DNS name"},
		{name: "stratum 16", in: id + "NTP_STRATUM=16\n", wantErr: "site.env:2: NTP_STRATUM=\"16\": want a whole number from 1 to 15"},
		{name: "stratum word", in: id + "NTP_STRATUM=one\n", wantErr: "want a whole number"},
		{name: "refresh 0", in: id + "REFRESH_INTERVAL_SECS=0\n", wantErr: "from 1 to 3600"},
		{name: "bad address", in: id + "NTP_REFERENCE_ADDRESS=gnss\n", wantErr: "want an IPv4 or IPv6 address"},
		{name: "image flag", in: id + "TIMENODED_OPTS=--https :443\n", wantErr: "--https is not a board setting"},
		{name: "production flag", in: id + "TIMENODED_OPTS=--sim\n", wantErr: "--sim is not a board setting"},
		{name: "bare word", in: id + "TIMENODED_OPTS=/dev/ttyS1\n", wantErr: "want --flag"},
		// The daemon reads the options with Go's flag package: what it
		// would refuse at start is refused here.
		{name: "three dashes", in: id + "TIMENODED_OPTS=---v\n", wantErr: "want --flag"},
		{name: "bool flag with a separate value", in: id + "TIMENODED_OPTS=-v true\n", wantErr: "\"true\": want --flag"},
		{name: "bool flag value", in: id + "TIMENODED_OPTS=--require-client-cert=maybe\n", wantErr: "want true or false"},
		{name: "value flag without value", in: id + "TIMENODED_OPTS=--serial\n", wantErr: "--serial needs a value"},
		{name: "value flag followed by a flag", in: id + "TIMENODED_OPTS=--serial --pps /dev/pps0\n", wantErr: "--serial needs a value"},
		{name: "baud not a number", in: id + "TIMENODED_OPTS=--baud fast\n", wantErr: "--baud=fast"},
		{name: "lock threshold too wide", in: id + "TIMENODED_OPTS=--lock-threshold=1s\n", wantErr: "--lock-threshold=1s: want a duration"},
		{name: "holdover bound not a duration", in: id + "TIMENODED_OPTS=--max-holdover-bound 5\n", wantErr: "want a duration"},
		{name: "nmea stratum 16", in: id + "TIMENODED_OPTS=--nmea-only-stratum=16\n", wantErr: "from 0 to 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnv("site.env", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, s string)
		want    string // generation name
		wantErr string
	}{
		{name: "generation", setup: func(t *testing.T, s string) {
			mkdir(t, filepath.Join(s, GensDir, "g1"))
			symlink(t, filepath.Join(GensDir, "g1"), filepath.Join(s, Link))
		}, want: "g1"},
		{name: "not provisioned", setup: func(*testing.T, string) {}, wantErr: "not provisioned"},
		{name: "absolute target", setup: func(t *testing.T, s string) {
			mkdir(t, filepath.Join(s, GensDir, "g1"))
			symlink(t, filepath.Join(s, GensDir, "g1"), filepath.Join(s, Link))
		}, wantErr: "want a generation under"},
		{name: "outside the generations", setup: func(t *testing.T, s string) {
			mkdir(t, filepath.Join(s, "keys"))
			symlink(t, "keys", filepath.Join(s, Link))
		}, wantErr: "outside .site"},
		{name: "escape with dot-dot", setup: func(t *testing.T, s string) {
			symlink(t, filepath.Join(GensDir, "..", "..", "etc"), filepath.Join(s, Link))
		}, wantErr: "outside .site"},
		{name: "missing generation", setup: func(t *testing.T, s string) {
			symlink(t, filepath.Join(GensDir, "gone"), filepath.Join(s, Link))
		}, wantErr: "no such file"},
		{name: "file, not directory", setup: func(t *testing.T, s string) {
			mkdir(t, filepath.Join(s, GensDir))
			if err := os.WriteFile(filepath.Join(s, GensDir, "f"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(GensDir, "f"), filepath.Join(s, Link))
		}, wantErr: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := t.TempDir()
			tt.setup(t, s)
			dir, err := Resolve(s)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve: %q, %v; want an error containing %q", dir, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dir != filepath.Join(s, GensDir, tt.want) {
				t.Errorf("Resolve = %s", dir)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseAllowList: no input panics, and what is accepted is a list of
// distinct identities that could each match a certificate name and that
// parse back to the same list.
func FuzzParseAllowList(f *testing.F) {
	for _, s := range []string{"a.example\n", "# c\n\nspiffe://x/y\r\nb\n", "a b\n", "a,b", "\ufeffa\n", "a\na\n", "\xff\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := ParseAllowList("allow.txt", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "allow.txt") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatal("accepted an empty list")
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || strings.HasPrefix(id, "#") || !validIdentity(id) || len(id) > maxIdentity || seen[id] {
				t.Fatalf("accepted identity %q", id)
			}
			seen[id] = true
		}
		again, err := ParseAllowList("allow.txt", []byte(strings.Join(ids, "\n")))
		if err != nil || !reflect.DeepEqual(again, ids) {
			t.Fatalf("round trip of %q: %q, %v", ids, again, err)
		}
	})
}

// FuzzParseEnv: no input panics, every accepted setting is a known key
// whose value passes its check and holds nothing a shell or systemd would
// expand, and the settings written back as KEY="VALUE" parse the same.
func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{
		"NTP_AUTHORITY_ID=time.test.example\n",
		"NTP_AUTHORITY_ID=a\nNTP_STRATUM=2\nTIMENODED_OPTS=\"--serial /dev/ttyS1 -v\"\n",
		"; c\n# c\nNTP_AUTHORITY_ID = \"x.y\"\nNTP_REFERENCE_ADDRESS=::1\nREFRESH_INTERVAL_SECS=5\n",
		"NTP_AUTHORITY_ID=$x\n", "TIMENODED_OPTS=--baud 9600 --lock-threshold=1ms\n", "=\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnv("site.env", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "site.env") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if env["NTP_AUTHORITY_ID"] == "" {
			t.Fatal("accepted without NTP_AUTHORITY_ID")
		}
		keys := make([]string, 0, len(env))
		for k, v := range env {
			check, ok := EnvKeys[k]
			if !ok || check(v) != nil || strings.ContainsAny(v, "\"'\\$`\n") {
				t.Fatalf("accepted %s=%q", k, v)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out strings.Builder
		for _, k := range keys {
			out.WriteString(k + "=\"" + env[k] + "\"\n")
		}
		again, err := ParseEnv("site.env", []byte(out.String()))
		if err != nil || !reflect.DeepEqual(again, env) {
			t.Fatalf("round trip of %q: %q, %v", env, again, err)
		}
	})
}

// TestOptsSet: a flag is found in each spelling the daemon accepts, and a
// value that happens to spell a flag's name is not a flag.
func TestOptsSet(t *testing.T) {
	tests := []struct {
		opts string
		want bool
	}{
		{"--witness-nts time.example:4460", true},
		{"-witness-nts=time.example:4460", true},
		{"--integrity enforce --witness-nts=[2001:db8::1]:4460", true},
		{"--witness-nts-ca /tmp/ca.pem", false},
		{"--witness-roughtime witness-nts:2002=a2V5", false},
		{"--serial witness-nts", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := OptsSet(tt.opts, "witness-nts"); got != tt.want {
			t.Errorf("OptsSet(%q, witness-nts) = %v, want %v", tt.opts, got, tt.want)
		}
	}
}
