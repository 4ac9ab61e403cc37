package servo

// PI is the proportional-integral control law of linuxptp's pi.c, the
// baseline a user would otherwise pick. Gains are per second of sample
// interval: the defaults Kp=0.7, Ki=0.3 are linuxptp's for hardware clocks.
// Like linuxptp, which scales Ki by the configured sync interval, the
// integral step never spans more than one nominal interval (1 s): a long gap
// in samples does not multiply the first offset after it.
type PI struct {
	Kp, Ki   float64
	integral float64 // accumulated frequency (ppb)
	lastNs   int64
	haveLast bool
}

// NewPI returns a PI law with linuxptp's default gains.
func NewPI() *PI { return &PI{Kp: 0.7, Ki: 0.3} }

// Sample implements Algorithm. The output is in ppb; offset in ns. A clock
// running fast shows a positive offset and needs a negative correction.
func (p *PI) Sample(offsetNs float64, localNs int64) float64 {
	dt := 1.0
	if p.haveLast && localNs > p.lastNs {
		dt = min(1, float64(localNs-p.lastNs)/1e9)
	}
	p.lastNs, p.haveLast = localNs, true
	p.integral -= p.Ki * offsetNs * dt
	return p.integral - p.Kp*offsetNs
}

// Reset implements Algorithm.
func (p *PI) Reset(freqPPB float64) {
	p.integral = freqPPB
	p.haveLast = false
}

// HoldoverFrequency implements Holder: the integral term.
func (p *PI) HoldoverFrequency() float64 { return p.integral }

var (
	_ Algorithm = (*PI)(nil)
	_ Holder    = (*PI)(nil)
)
