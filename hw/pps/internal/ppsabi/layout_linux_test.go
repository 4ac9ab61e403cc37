package ppsabi

import (
	"testing"
	"unsafe"
)

// TestRequestsUseGenericEncoding recomputes the PPS ioctl numbers with the
// kernel's generic _IOC encoding and the pointer size of the architecture
// under test, and compares them with golang.org/x/sys/unix. It runs without
// cgo, so an arm64 machine (or qemu-user) checks arm64 with it.
func TestRequestsUseGenericEncoding(t *testing.T) {
	l := GoLayout()
	want := GenericRequests(uint64(unsafe.Sizeof(uintptr(0))))
	tests := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"PPS_GETPARAMS", l.GetParams, want[0]},
		{"PPS_SETPARAMS", l.SetParams, want[1]},
		{"PPS_GETCAP", l.GetCap, want[2]},
		{"PPS_FETCH", l.Fetch, want[3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %#x, generic encoding gives %#x", tt.name, tt.got, tt.want)
			}
		})
	}
}

// TestLP64Layout checks the struct layout the doc comment derives for LP64
// Linux (amd64, arm64): every field package pps touches at the offset the C
// alignment rules give.
func TestLP64Layout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("LP64 layout: this architecture has 32-bit pointers")
	}
	want := map[string]uint64{
		"sizeof(struct pps_ktime)":             16,
		"sizeof(struct pps_kinfo)":             48,
		"sizeof(struct pps_kparams)":           40,
		"sizeof(struct pps_fdata)":             64,
		"offsetof(pps_ktime, nsec)":            8,
		"offsetof(pps_ktime, flags)":           12,
		"offsetof(pps_kinfo, assert_tu)":       8,
		"offsetof(pps_kinfo, clear_tu)":        24,
		"offsetof(pps_kinfo, current_mode)":    40,
		"offsetof(pps_kparams, assert_off_tu)": 8,
		"offsetof(pps_fdata, timeout)":         48,
	}
	for _, f := range GoLayout().Fields() {
		w, ok := want[f.Name]
		if !ok {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			if f.Value != w {
				t.Errorf("%s = %d, want %d", f.Name, f.Value, w)
			}
		})
		delete(want, f.Name)
	}
	for name := range want {
		t.Errorf("layout has no field %s", name)
	}
}
