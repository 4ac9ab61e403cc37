package provision

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func ed25519Key() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

var rsaKeys sync.Map // bits -> ssh line, made once per run

// rsaKey makes an RSA public key line of the given size.
func rsaKey(t *testing.T, bits int) string {
	t.Helper()
	if s, ok := rsaKeys.Load(bits); ok {
		return s.(string)
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	rsaKeys.Store(bits, s)
	return s
}

// dsaKey is a syntactically valid ssh-dss line (1024-bit p; the numbers
// mean nothing): enough to be parsed and refused.
func dsaKey() string {
	var b []byte
	str := func(s []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	mpint := func(n *big.Int) {
		v := n.Bytes()
		if v[0]&0x80 != 0 {
			v = append([]byte{0}, v...)
		}
		str(v)
	}
	str([]byte("ssh-dss"))
	mpint(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 1023), big.NewInt(1)))
	mpint(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(7)))
	mpint(big.NewInt(2))
	mpint(big.NewInt(3))
	return "ssh-dss " + base64.StdEncoding.EncodeToString(b) + " old@test"
}

func TestParseAuthorizedKeys(t *testing.T) {
	ed := sshKey(t, "admin@test")
	tests := []struct {
		name    string
		in      string
		want    int      // keys accepted
		wantErr []string // substrings of the error
	}{
		{name: "one key", in: ed + "\n", want: 1},
		{name: "comments, blanks, options", in: "# ops\n\n" + `from="10.90.0.0/24",no-agent-forwarding ` + ed + "\n" + rsaKey(t, 3072) + "\n", want: 2},
		{name: "CRLF", in: ed + "\r\n", want: 1},
		{name: "empty", in: "", wantErr: []string{"authorized_keys: no key"}},
		{name: "comments only", in: "# nobody\n", wantErr: []string{"no key"}},
		{name: "garbage", in: "hello world\n", wantErr: []string{"authorized_keys:1: not an OpenSSH public key line"}},
		{name: "private key pasted", in: "-----BEGIN OPENSSH PRIVATE KEY-----\n", wantErr: []string{"authorized_keys:1:"}},
		{name: "truncated base64", in: ed[:40] + "\n", wantErr: []string{"authorized_keys:1:"}},
		{name: "RSA 2048", in: ed + "\n" + rsaKey(t, 2048) + "\n", wantErr: []string{"authorized_keys:2: RSA key", "2048 bits, want at least 3072"}},
		{name: "DSA", in: dsaKey() + "\n", wantErr: []string{"authorized_keys:1:"}},
		{name: "every bad line reported", in: "bad one\n" + ed + "\nbad two\n", wantErr: []string{"authorized_keys:1:", "authorized_keys:3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseAuthorizedKeys("authorized_keys", []byte(tt.in))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("accepted %v", keys)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tt.want {
				t.Errorf("%d keys, want %d", len(keys), tt.want)
			}
		})
	}
}

func TestParseModules(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // modules as "name params;..."
		wantErr string
	}{
		{name: "parallel port", in: "# LPT1\nparport_pc io=0x378 irq=7\npps_parport\n", want: "parport_pc io=0x378 irq=7;pps_parport"},
		{name: "serial", in: "pps_ldisc\n", want: "pps_ldisc"},
		{name: "gpio with list value", in: "pps_gpio  gpio=18,19 capture_clear=1\n", want: "pps_gpio gpio=18,19 capture_clear=1"},
		{name: "empty", in: "", want: ""},
		{name: "other module", in: "e1000\n", wantErr: `modules.conf:1: "e1000" is not a PPS or parallel-port module`},
		{name: "dash spelling", in: "pps-ldisc\n", wantErr: "modules.conf:1:"},
		{name: "twice", in: "pps_ldisc\npps_ldisc\n", wantErr: "modules.conf:2: pps_ldisc listed twice"},
		{name: "shell expansion", in: "parport_pc io=$(reboot)\n", wantErr: "modules.conf:1: parport_pc: parameter"},
		{name: "glob", in: "parport_pc io=*\n", wantErr: "parameter"},
		{name: "no value", in: "parport_pc io\n", wantErr: "parameter"},
		{name: "empty value", in: "parport_pc io=\n", wantErr: "parameter"},
		{name: "modprobe option", in: "pps_ldisc --force\n", wantErr: "parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mods, err := ParseModules("modules.conf", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range mods {
				got = append(got, strings.Join(append([]string{m.Name}, m.Params...), " "))
			}
			if strings.Join(got, ";") != tt.want {
				t.Errorf("got %q, want %q", strings.Join(got, ";"), tt.want)
			}
		})
	}
}

func TestParseSiteNft(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int // statements
		wantErr string
	}{
		{name: "example", in: "# site\nflush set inet timenode ntp_clients_v4\nadd element inet timenode ntp_clients_v4 { 10.80.0.0/16, 192.168.10.0/24 }\nadd element inet timenode ntp_clients_v6 { fd00:80::/48 }\n", want: 3},
		{name: "multi-line set", in: "add element inet timenode mgmt_v4 {\n  10.90.0.0/24, # office\n  10.91.0.1-10.91.0.9\n}\n", want: 1},
		{name: "semicolons", in: "flush set inet timenode dns_v4; add element inet timenode dns_v4 { 10.80.0.53 }\n", want: 2},
		{name: "delete", in: "delete element inet timenode app_v4 { 10.80.0.0/24 }\r\n", want: 1},
		{name: "empty", in: "", want: 0},
		{name: "flush ruleset", in: "flush ruleset\n", wantErr: "site.nft:1: \"flush ruleset\": want"},
		{name: "other table", in: "flush set inet filter x\n", wantErr: "site.nft:1:"},
		{name: "other family", in: "add element ip timenode mgmt_v4 { 10.0.0.1 }\n", wantErr: "site.nft:1:"},
		{name: "a rule", in: "add rule inet timenode input accept\n", wantErr: "site.nft:1:"},
		{name: "include", in: "# ok\ninclude \"/etc/shadow\"\n", wantErr: "site.nft:2: '\"'"},
		{name: "define", in: "define x = 1\n", wantErr: "site.nft:1: '='"},
		{name: "flush with elements", in: "flush set inet timenode mgmt_v4 { 10.0.0.1 }\n", wantErr: "site.nft:1:"},
		{name: "add without braces", in: "add element inet timenode mgmt_v4 10.0.0.1\n", wantErr: "site.nft:1:"},
		{name: "unclosed", in: "\nadd element inet timenode mgmt_v4 {\n10.0.0.1\n", wantErr: "site.nft:2: { not closed"},
		{name: "stray close", in: "}\n", wantErr: "site.nft:1: } without {"},
		{name: "second statement bad", in: "flush set inet timenode mgmt_v4\nlist ruleset\n", wantErr: "site.nft:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := ParseSiteNft("site.nft", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(stmts) != tt.want {
				t.Errorf("%d statements %q, want %d", len(stmts), stmts, tt.want)
			}
		})
	}
}

// FuzzParseAuthorizedKeys: no input panics; every accepted key is
// neither DSA nor short RSA; errors name the file.
func FuzzParseAuthorizedKeys(f *testing.F) {
	f.Add([]byte("# c\n" + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEfL0vbbzN1yHXtTVzw6h5mL6XcaHAhYMKAAE1jrZV+U a@b\n"))
	f.Add([]byte(dsaKey() + "\n"))
	f.Add([]byte("from=\"x\" ssh-rsa AAAA\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseAuthorizedKeys("authorized_keys", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "authorized_keys") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("accepted no key")
		}
		for _, k := range keys {
			if k.Type == ssh.KeyAlgoDSA || k.Type == ssh.KeyAlgoRSA && k.Bits < minRSABits {
				t.Fatalf("accepted %v", k)
			}
		}
	})
}

// FuzzParseModules: no input panics; what is accepted is allowed modules
// with parameters the unit's shell cannot expand.
func FuzzParseModules(f *testing.F) {
	for _, s := range []string{"parport_pc io=0x378 irq=7\npps_parport\n", "pps_gpio gpio=1,2\n", "e1000\n", "pps_ldisc io=$x\n", "#\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mods, err := ParseModules("modules.conf", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "modules.conf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, m := range mods {
			if !PPSModules[m.Name] {
				t.Fatalf("accepted module %q", m.Name)
			}
			for _, p := range m.Params {
				if strings.ContainsAny(p, "$`\"'\\*?[]{}~;&|<> \t\n") || !strings.Contains(p, "=") {
					t.Fatalf("accepted parameter %q", p)
				}
			}
		}
	})
}

// FuzzParseSiteNft: no input panics; every accepted statement fills a
// set of table inet timenode and holds only address characters.
func FuzzParseSiteNft(f *testing.F) {
	for _, s := range []string{
		"flush set inet timenode mgmt_v4\nadd element inet timenode mgmt_v4 { 10.90.0.0/24 }\n",
		"add element inet timenode a {\n1,\n2 } ; flush set inet timenode a # c\n",
		"include \"x\"\n", "}{", "flush ruleset",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		stmts, err := ParseSiteNft("site.nft", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "site.nft") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, s := range stmts {
			ok := false
			for _, v := range siteNftVerbs {
				ok = ok || strings.HasPrefix(s, v[0]+" "+v[1]+" inet timenode ")
			}
			if !ok || strings.ContainsAny(s, "\"';$@\n") {
				t.Fatalf("accepted statement %q", s)
			}
		}
	})
}
