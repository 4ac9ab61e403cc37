package ppssync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Serve answers the guest's requests read from r with responses written to
// w, stamped with now (time.Now when nil), until r ends or ctx is done.
// Lines that are not requests (SSH banners, warnings, echoes) are
// skipped. It returns nil at the end of r, ctx.Err() when ctx is done, or
// the read or write error. A read blocked in r when ctx is done is left
// behind: close r to release it.
func Serve(ctx context.Context, r io.Reader, w io.Writer, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, r, w, now) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func serve(ctx context.Context, r io.Reader, w io.Writer, now func() time.Time) error {
	lr := newLineReader(r)
	for {
		line, ok, err := lr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("ppssync: read request: %w", err)
		}
		if !ok {
			continue
		}
		m, err := ParseLine(line)
		if err != nil || m.Kind != Request {
			continue
		}
		t2 := now() // parsing a short line takes well under a microsecond
		if err := ctx.Err(); err != nil {
			return err
		}
		rsp := Message{Kind: Response, Seq: m.Seq, T1: m.T1, T2: t2.UnixNano()}
		rsp.T3 = now().UnixNano()
		if _, err := io.WriteString(w, rsp.String()+"\n"); err != nil {
			return fmt.Errorf("ppssync: send response %d: %w", m.Seq, err)
		}
	}
}
