package gnss

import (
	"errors"
	"fmt"

	"github.com/adrianmo/go-nmea"
)

// Sentinel errors from Parser.Parse, for errors.Is.
var (
	// ErrUnknownType: a well-framed sentence of a type go-nmea does not
	// decode (most proprietary sentences, $GYOACC, ...). Counted, not fatal.
	ErrUnknownType = errors.New("unknown sentence type")
	// ErrUnparsable: a known type whose fields do not decode.
	ErrUnparsable = errors.New("unparsable sentence")
)

// Parser decodes framed sentences with github.com/adrianmo/go-nmea. The
// checksum is judged by VerifyChecksum before parsing (so that missing
// checksums can be allowed by configuration); the Parser does not check it
// again. A Parser is not safe for concurrent use.
type Parser struct {
	p nmea.SentenceParser
}

// NewParser returns a Parser.
func NewParser() *Parser {
	return &Parser{p: nmea.SentenceParser{
		CheckCRC:    func(nmea.BaseSentence, string) error { return nil },
		ParsePrefix: parsePrefix,
	}}
}

// parsePrefix is go-nmea's prefix split, except that a bare "Q" address is
// refused: go-nmea v1.10.0 takes it for a query and slices past the end of
// a short sentence ("$Q*51" panics; found by FuzzFramerParse).
func parsePrefix(prefix string) (talker, typ string, err error) {
	talker, typ, err = nmea.ParsePrefix(prefix)
	if err == nil && typ == nmea.TypeQuery && len(prefix) != 5 {
		return "", "", fmt.Errorf("address %q is not a query", prefix)
	}
	return talker, typ, err
}

// Parse decodes raw, a sentence from a Framer. Errors wrap ErrUnknownType
// or ErrUnparsable.
func (p *Parser) Parse(raw []byte) (s nmea.Sentence, err error) {
	// go-nmea is third-party code fed with line noise: a panic in it must
	// cost one sentence, not the daemon.
	defer func() {
		if v := recover(); v != nil {
			s, err = nil, fmt.Errorf("gnss: parse %.12q: %w: go-nmea panic: %v", raw, ErrUnparsable, v)
		}
	}()
	s, err = p.p.Parse(string(raw))
	if err == nil {
		return s, nil
	}
	var ns *nmea.NotSupportedError
	if errors.As(err, &ns) {
		return nil, fmt.Errorf("gnss: parse %s: %w", ns.Prefix, ErrUnknownType)
	}
	return nil, fmt.Errorf("gnss: parse %.12q: %w: %v", raw, ErrUnparsable, err)
}
