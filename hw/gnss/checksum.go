package gnss

// ChecksumStatus classifies a framed sentence by its "*HH" suffix.
type ChecksumStatus uint8

// Checksum classes, following the counting rules in testdata/nmea/README.md.
const (
	// ChecksumOK: the sentence ends in "*HH" (upper or lower case hex) and
	// HH is the XOR of the bytes between the start delimiter and the "*".
	ChecksumOK ChecksumStatus = iota
	// ChecksumBad: a "*" is present but the value is wrong, is not exactly
	// two hex digits, or is followed by other bytes.
	ChecksumBad
	// ChecksumMissing: the sentence has no "*" at all (some timing
	// receivers send none; truncated sentences also land here).
	ChecksumMissing
)

// String names the class as used in logs and metrics labels.
func (c ChecksumStatus) String() string {
	switch c {
	case ChecksumOK:
		return "ok"
	case ChecksumBad:
		return "bad"
	default:
		return "missing"
	}
}

// Checksum returns the XOR of all bytes of body, the NMEA 0183 checksum of
// the text between the start delimiter and the "*".
func Checksum(body []byte) byte {
	var c byte
	for _, b := range body {
		c ^= b
	}
	return c
}

// VerifyChecksum classifies sentence s, which starts with its "$" or "!"
// delimiter and has no line terminator. lower reports that an otherwise
// correct checksum was written in lower-case hex.
func VerifyChecksum(s []byte) (status ChecksumStatus, lower bool) {
	star := -1
	for i := 1; i < len(s); i++ {
		if s[i] == '*' {
			star = i
			break
		}
	}
	if star < 0 {
		return ChecksumMissing, false
	}
	if len(s) != star+3 {
		return ChecksumBad, false
	}
	hi, okHi, lowHi := hexNibble(s[star+1])
	lo, okLo, lowLo := hexNibble(s[star+2])
	if !okHi || !okLo {
		return ChecksumBad, false
	}
	if hi<<4|lo != Checksum(s[1:star]) {
		return ChecksumBad, false
	}
	return ChecksumOK, lowHi || lowLo
}

// hexNibble decodes one hex digit; lower reports a lower-case a-f.
func hexNibble(b byte) (v byte, ok, lower bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true, false
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true, false
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true, true
	}
	return 0, false, false
}

// AppendSentence appends "$body*HH\r\n" to dst, computing HH; simulators
// and tests use it to write well-formed sentences.
func AppendSentence(dst []byte, body string) []byte {
	const hex = "0123456789ABCDEF"
	var c byte
	for i := 0; i < len(body); i++ {
		c ^= body[i]
	}
	dst = append(dst, '$')
	dst = append(dst, body...)
	return append(dst, '*', hex[c>>4], hex[c&0xf], '\r', '\n')
}
