package ppssync

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Magic starts every protocol message; it names the protocol and its
// version.
const Magic = "PPSSYNC/1"

// MaxLine is the longest line, in bytes without its newline (a CR before
// it counts), that either side parses. Longer lines are dropped whole as
// noise.
const MaxLine = 4096

// Kind tells a request from a response.
type Kind uint8

// The two messages of the protocol.
const (
	// Request is the guest's "REQ <seq> <t1>".
	Request Kind = iota + 1
	// Response is the host's "RSP <seq> <t1> <t2> <t3>".
	Response
)

// String returns the message's keyword.
func (k Kind) String() string {
	switch k {
	case Request:
		return "REQ"
	case Response:
		return "RSP"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Message is one protocol line.
type Message struct {
	Kind Kind
	// Seq numbers the request; the response repeats it.
	Seq uint64
	// T1 is the guest's raw clock when it sent the request, in
	// nanoseconds; the response repeats it.
	T1 int64
	// T2 and T3 are the host's UTC when it received the request and when
	// it sent the response, in nanoseconds since the Unix epoch. Zero in
	// a request.
	T2, T3 int64
}

// ErrNotProtocol is wrapped by ParseLine's error for a line that is not a
// well-formed protocol message.
var ErrNotProtocol = errors.New("ppssync: not a protocol line")

// String formats m as its protocol line, without the newline.
func (m Message) String() string {
	switch m.Kind {
	case Request:
		return fmt.Sprintf("%s REQ %d %d", Magic, m.Seq, m.T1)
	case Response:
		return fmt.Sprintf("%s RSP %d %d %d %d", Magic, m.Seq, m.T1, m.T2, m.T3)
	}
	return fmt.Sprintf("%s ?%d", Magic, uint8(m.Kind))
}

// ParseLine parses one line (with or without its "\n" or "\r\n"). Text
// before the last occurrence of Magic is ignored, so a message survives a
// warning printed without a newline in front of it; everything after Magic
// must be exactly one message.
func ParseLine(line string) (Message, error) {
	line = strings.TrimRight(line, "\r\n")
	i := strings.LastIndex(line, Magic)
	if i < 0 {
		return Message{}, ErrNotProtocol
	}
	rest := line[i+len(Magic):]
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return Message{}, fmt.Errorf("%w: no blank after %s", ErrNotProtocol, Magic)
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return Message{}, fmt.Errorf("%w: nothing after %s", ErrNotProtocol, Magic)
	}
	var m Message
	var want int
	switch f[0] {
	case "REQ":
		m.Kind, want = Request, 3
	case "RSP":
		m.Kind, want = Response, 5
	default:
		return Message{}, fmt.Errorf("%w: unknown message %.16q", ErrNotProtocol, f[0])
	}
	if len(f) != want {
		return Message{}, fmt.Errorf("%w: %s has %d fields, want %d", ErrNotProtocol, f[0], len(f)-1, want-1)
	}
	var err error
	if m.Seq, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return Message{}, fmt.Errorf("%w: seq: %w", ErrNotProtocol, err)
	}
	ts := []*int64{&m.T1, &m.T2, &m.T3}
	for j, s := range f[2:] {
		if *ts[j], err = strconv.ParseInt(s, 10, 64); err != nil {
			return Message{}, fmt.Errorf("%w: t%d: %w", ErrNotProtocol, j+1, err)
		}
	}
	return m, nil
}

// lineReader reads newline-terminated lines of at most MaxLine bytes,
// dropping longer ones whole, so that no amount of noise exhausts memory
// or stops the reader.
type lineReader struct {
	br *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, MaxLine+1)}
}

// next returns the next line without its newline and whether it fit in
// MaxLine. At the end of the stream a last unterminated line is returned
// with a nil error; the call after it returns the read error (io.EOF).
func (lr *lineReader) next() (line string, ok bool, err error) {
	overflow := false
	for {
		b, err := lr.br.ReadSlice('\n')
		switch {
		case err == nil:
			if overflow {
				return "", false, nil
			}
			return string(b[:len(b)-1]), true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			overflow = true
		case len(b) > 0 && !overflow:
			return string(b), true, nil
		default:
			return "", false, err
		}
	}
}
