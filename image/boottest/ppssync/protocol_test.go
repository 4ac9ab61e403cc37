package ppssync

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	req := Message{Kind: Request, Seq: 7, T1: 123456789}
	rsp := Message{Kind: Response, Seq: 7, T1: -5, T2: 1951000000123456789, T3: 1951000000123457789}
	tests := []struct {
		name string
		line string
		want Message
		ok   bool
	}{
		{"request", "PPSSYNC/1 REQ 7 123456789", req, true},
		{"request with newline", "PPSSYNC/1 REQ 7 123456789\n", req, true},
		{"request with CRLF (pty)", "PPSSYNC/1 REQ 7 123456789\r\n", req, true},
		{"response", "PPSSYNC/1 RSP 7 -5 1951000000123456789 1951000000123457789", rsp, true},
		{"noise before magic", "Warning: Permanently added '[127.0.0.1]:2222'PPSSYNC/1 REQ 7 123456789", req, true},
		{"last magic wins", "PPSSYNC/1 garbage PPSSYNC/1 REQ 7 123456789", req, true},
		{"extra blanks", "PPSSYNC/1  REQ\t7  123456789 ", req, true},
		{"empty", "", Message{}, false},
		{"banner", "Linux timenode 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian", Message{}, false},
		{"magic alone", "PPSSYNC/1", Message{}, false},
		{"magic and blanks", "PPSSYNC/1 \t ", Message{}, false},
		{"magic glued", "PPSSYNC/1REQ 7 1", Message{}, false},
		{"other version", "PPSSYNC/2 REQ 7 1", Message{}, false},
		{"unknown keyword", "PPSSYNC/1 HELLO 7 1", Message{}, false},
		{"request too short", "PPSSYNC/1 REQ 7", Message{}, false},
		{"request too long", "PPSSYNC/1 REQ 7 1 2", Message{}, false},
		{"response too short", "PPSSYNC/1 RSP 7 1 2", Message{}, false},
		{"negative seq", "PPSSYNC/1 REQ -7 1", Message{}, false},
		{"hex time", "PPSSYNC/1 REQ 7 0x10", Message{}, false},
		{"time overflows", "PPSSYNC/1 REQ 7 9223372036854775808", Message{}, false},
		{"float time", "PPSSYNC/1 REQ 7 1.5", Message{}, false},
		{"truncated by noise", "PPSSYNC/1 REQ 7 12345sudo: unable to resolve host", Message{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine(tt.line)
			if tt.ok {
				if err != nil {
					t.Fatalf("ParseLine(%q): %v", tt.line, err)
				}
				if got != tt.want {
					t.Fatalf("ParseLine(%q) = %+v, want %+v", tt.line, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseLine(%q) = %+v, want an error", tt.line, got)
			}
			if !errors.Is(err, ErrNotProtocol) {
				t.Fatalf("ParseLine(%q): %v does not wrap ErrNotProtocol", tt.line, err)
			}
		})
	}
}

func TestMessageString(t *testing.T) {
	tests := []struct {
		m    Message
		want string
	}{
		{Message{Kind: Request, Seq: 1, T1: 2}, "PPSSYNC/1 REQ 1 2"},
		{Message{Kind: Response, Seq: 1, T1: 2, T2: 3, T3: 4}, "PPSSYNC/1 RSP 1 2 3 4"},
		{Message{Kind: Response, Seq: 18446744073709551615, T1: -9223372036854775808, T2: 9223372036854775807, T3: 0},
			"PPSSYNC/1 RSP 18446744073709551615 -9223372036854775808 9223372036854775807 0"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.m, got, tt.want)
		}
		if back, err := ParseLine(tt.want); err != nil || back != tt.m {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v", tt.want, back, err, tt.m)
		}
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", MaxLine+1)
	fits := strings.Repeat("y", MaxLine)
	tests := []struct {
		name  string
		input string
		want  []string // "" for a dropped line
	}{
		{"lines", "a\nb\n", []string{"a", "b"}},
		{"unterminated last line", "a\nb", []string{"a", "b"}},
		{"empty lines", "\n\n", []string{"", ""}},
		{"too long is dropped whole", long + "\nafter\n", []string{"", "after"}},
		{"longest that fits", fits + "\n", []string{fits}},
		{"too long at the end", "a\n" + long, []string{"a"}},
		{"very long", strings.Repeat("z", 5*MaxLine) + "\nok\n", []string{"", "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(tt.input))
			var got []string
			for {
				line, ok, err := lr.next()
				if err != nil {
					if err != io.EOF {
						t.Fatalf("next: %v", err)
					}
					break
				}
				if !ok {
					line = ""
				}
				got = append(got, line)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("lines = %q, want %q", short(got), short(tt.want))
			}
		})
	}
}

// short abbreviates long lines for failure messages.
func short(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 20 {
			l = l[:20] + "…"
		}
		out[i] = l
	}
	return out
}
