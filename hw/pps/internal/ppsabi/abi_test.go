package ppsabi

import "testing"

// TestGenericIoctlKnownValues pins the encoder to request numbers published
// in kernel headers for 64-bit generic architectures (amd64, arm64).
func TestGenericIoctlKnownValues(t *testing.T) {
	tests := []struct {
		name               string
		dir, typ, nr, size uint64
		want               uint64
	}{
		{"PPS_GETPARAMS on LP64", 2, 'p', 0xa1, 8, 0x800870a1},
		{"PPS_FETCH on LP64", 3, 'p', 0xa4, 8, 0xc00870a4},
		{"PPS_FETCH on ILP32", 3, 'p', 0xa4, 4, 0xc00470a4},
		{"PTP_ENABLE_PPS", 1, '=', 4, 4, 0x40043d04},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GenericIoctl(tt.dir, tt.typ, tt.nr, tt.size); got != tt.want {
				t.Errorf("GenericIoctl = %#x, want %#x", got, tt.want)
			}
		})
	}
}
