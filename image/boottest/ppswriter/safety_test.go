package main

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckGuest(t *testing.T) {
	tests := []struct {
		name    string
		vendor  string // "-": no DMI file
		pps     map[string]string
		wantDev string // "" for a refusal
		text    string // in the refusal
	}{
		{"boot test guest", "QEMU\n", map[string]string{"pps0": "pps_parport\n"}, "pps0", ""},
		{"pps_parport after another source", "QEMU", map[string]string{"pps0": "pps-gpio.-1", "pps1": "pps_parport"}, "pps1", ""},
		{"real hardware", "Dell Inc.\n", map[string]string{"pps0": "pps_parport"}, "", `is "Dell Inc.", want "QEMU"`},
		{"vendor in other case", "qemu", map[string]string{"pps0": "pps_parport"}, "", `is "qemu"`},
		{"no DMI", "-", map[string]string{"pps0": "pps_parport"}, "", "cannot read the DMI vendor"},
		{"no PPS class", "QEMU", nil, "", "found: none"},
		{"other PPS sources only", "QEMU", map[string]string{"pps0": "ktimer", "pps1": "pps@/dev/ttyS1"}, "", `pps0="ktimer", pps1="pps@/dev/ttyS1"`},
		{"not a pps entry", "QEMU", map[string]string{"ptp0": "pps_parport"}, "", "found: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeSysfs(t, tt.vendor, tt.pps)
			dev, err := checkGuest(root)
			if tt.wantDev != "" {
				if err != nil || dev != tt.wantDev {
					t.Fatalf("checkGuest = %q, %v; want %q", dev, err, tt.wantDev)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkGuest = %q, want a refusal", dev)
			}
			if !errors.Is(err, errNotGuest) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("refusal %q does not wrap errNotGuest or say %q", err, tt.text)
			}
		})
	}
}
