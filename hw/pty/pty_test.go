package pty

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"
)

func TestOpenPassesBytesRaw(t *testing.T) {
	m, slave, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []byte("$GPZDA,1*00\r\n\x00\x13\xb5b")
	if _, err := m.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatalf("read slave: %v (got %q)", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
