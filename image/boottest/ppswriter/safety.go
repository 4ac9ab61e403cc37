package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// wantVendor is the DMI system vendor of a qemu guest.
const wantVendor = "QEMU"

// wantPPS is the name of the PPS source that the parallel port's
// interrupt drives.
const wantPPS = "pps_parport"

// errNotGuest is wrapped by every refusal of checkGuest.
var errNotGuest = errors.New("not a qemu guest with a pps_parport PPS device")

// checkGuest refuses to let the writer near I/O ports anywhere but in a
// qemu guest whose parallel port drives a pps_parport PPS source: on real
// hardware, port 0x378 could be anything. sysfs is the root of sysfs
// (/sys, or a fake tree in tests). It returns the PPS device's name (such
// as "pps0").
func checkGuest(sysfs string) (string, error) {
	vendorFile := filepath.Join(sysfs, "class", "dmi", "id", "sys_vendor")
	b, err := os.ReadFile(vendorFile)
	if err != nil {
		return "", fmt.Errorf("%w: cannot read the DMI vendor: %w", errNotGuest, err)
	}
	if v := strings.TrimSpace(string(b)); v != wantVendor {
		return "", fmt.Errorf("%w: %s is %q, want %q", errNotGuest, vendorFile, v, wantVendor)
	}
	class := filepath.Join(sysfs, "class", "pps")
	ents, err := os.ReadDir(class)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %w", errNotGuest, err)
	}
	var seen []string
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "pps") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(class, e.Name(), "name"))
		if err != nil {
			seen = append(seen, e.Name()+" (unreadable name)")
			continue
		}
		name := strings.TrimSpace(string(b))
		if name == wantPPS {
			return e.Name(), nil
		}
		seen = append(seen, fmt.Sprintf("%s=%q", e.Name(), name))
	}
	found := "none"
	if len(seen) > 0 {
		found = strings.Join(seen, ", ")
	}
	return "", fmt.Errorf("%w: no %s device in %s (found: %s); load parport_pc (io=0x378 irq=7) and pps_parport first",
		errNotGuest, wantPPS, class, found)
}
