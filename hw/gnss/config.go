package gnss

import (
	"fmt"
	"time"
)

// Defaults applied by NewReceiver to zero Config fields.
const (
	DefaultBaud           = 9600
	DefaultSilenceTimeout = 2 * time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMinBackoff     = 250 * time.Millisecond
	DefaultEpochGap       = 50 * time.Millisecond
	DefaultNotNMEABytes   = 2048
)

// Config describes the receiver's serial line and how strict to be.
type Config struct {
	// Device is the serial device path (/dev/ttyS0, /dev/ttyUSB0, a pty).
	Device string
	// Baud is the line speed, DefaultBaud (9600) if zero.
	Baud int
	// Parity is 'N', 'E' or 'O'; 0 means 'N'. Data bits are 8, stop bits 1.
	Parity byte
	// AllowMissingChecksum accepts sentences without "*HH" (some timing
	// receivers send none); they are counted in Stats.ChecksumMissing
	// either way, and dropped unless this is set.
	AllowMissingChecksum bool
	// SilenceTimeout is how long the line may stay quiet before the state
	// becomes "no_data"; DefaultSilenceTimeout (2 s) if zero.
	SilenceTimeout time.Duration
	// MaxBackoff caps the jittered exponential delay between reopen
	// attempts; DefaultMaxBackoff (30 s) if zero.
	MaxBackoff time.Duration
	// MinBackoff is the first reopen delay; DefaultMinBackoff if zero.
	MinBackoff time.Duration
	// EpochGap is the quiet time after which the epoch being assembled is
	// complete and its Fix is sent; DefaultEpochGap (50 ms) if zero.
	EpochGap time.Duration
	// NotNMEABytes is how many bytes may arrive without one valid sentence
	// before the stream is declared "not_nmea" (wrong baud rate, binary
	// protocol); DefaultNotNMEABytes if zero.
	NotNMEABytes int
	// MinDate is the earliest plausible date; DefaultMinDate if zero.
	MinDate time.Time
	// SkyStaleAfter is how long satellites, fix and DOP reported by GSV,
	// GSA and GGA stay in Receiver.Sky; DefaultSkyStaleAfter if zero.
	SkyStaleAfter time.Duration
	// Tap, if set, is called from Run's goroutine with every framed
	// sentence before it is parsed (raw is only valid during the call).
	// The replay tests and `timenodectl nmea` use it to count by the
	// testdata rules; keep it fast.
	Tap func(raw []byte, status ChecksumStatus)
}

// Validate reports a configuration Run would refuse: an empty device, a
// negative baud rate or a parity other than N, E or O.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Device == "" {
		return c, fmt.Errorf("gnss: config: no device")
	}
	if c.Baud < 0 {
		return c, fmt.Errorf("gnss: config %s: baud %d", c.Device, c.Baud)
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	switch c.Parity {
	case 0:
		c.Parity = 'N'
	case 'N', 'E', 'O':
	default:
		return c, fmt.Errorf("gnss: config %s: parity %q is not N, E or O", c.Device, c.Parity)
	}
	if c.SilenceTimeout <= 0 {
		c.SilenceTimeout = DefaultSilenceTimeout
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MinBackoff > c.MaxBackoff {
		c.MinBackoff = c.MaxBackoff
	}
	if c.EpochGap <= 0 {
		c.EpochGap = DefaultEpochGap
	}
	if c.NotNMEABytes <= 0 {
		c.NotNMEABytes = DefaultNotNMEABytes
	}
	if c.SkyStaleAfter <= 0 {
		c.SkyStaleAfter = DefaultSkyStaleAfter
	}
	if c.MinDate.IsZero() {
		c.MinDate = DefaultMinDate
	}
	return c, nil
}
