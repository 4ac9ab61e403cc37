package testbin

import (
	"testing"
	"time"
)

func TestWaitScale(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Duration
	}{
		{"", time.Second},
		{"4", 4 * time.Second},
		{"0", time.Second},
		{"101", time.Second},
		{"x", time.Second},
	} {
		t.Setenv(ScaleEnv, tc.env)
		if got := Wait(time.Second); got != tc.want {
			t.Errorf("%s=%q: Wait(1s) = %v, want %v", ScaleEnv, tc.env, got, tc.want)
		}
	}
}

func TestEmulated(t *testing.T) {
	for env, want := range map[string]bool{"": false, "1": false, "5": true, "101": false, "x": false} {
		t.Setenv(ScaleEnv, env)
		if got := Emulated(); got != want {
			t.Errorf("%s=%q: Emulated() = %v, want %v", ScaleEnv, env, got, want)
		}
	}
}
