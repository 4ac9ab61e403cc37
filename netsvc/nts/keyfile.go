package nts

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
)

// keyFileHeader is the first line of a cookie key file; the number is the
// format version, so a later format is refused rather than misread.
const keyFileHeader = "timenode-nts-cookie-keys 1"

// maxFileKeys bounds the keys a file may hold; KeepKeys is far smaller in
// practice, and a file with more is not one we wrote.
const maxFileKeys = 64

// keyRecord is one line of a cookie key file: key id, creation time and
// the 32-byte AEAD_AES_SIV_CMAC_256 key.
type keyRecord struct {
	id      uint32
	created time.Time
	secret  [keyLen]byte
}

// marshalKeyFile writes the key file: the header line, then one line per
// key, newest first: "<id, 8 hex digits> <created, RFC 3339 UTC> <key, 64
// hex digits>". Text, so an operator can see the ids and ages with an
// editor; the keys are secret all the same, and the file is mode 0600.
func marshalKeyFile(recs []keyRecord) []byte {
	var b bytes.Buffer
	b.WriteString(keyFileHeader + "\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "%08x %s ", r.id, r.created.UTC().Format(time.RFC3339Nano))
		var h [2 * keyLen]byte
		hex.Encode(h[:], r.secret[:])
		b.Write(h[:])
		b.WriteByte('\n')
		clear(h[:])
	}
	return b.Bytes()
}

// parseKeyFile reads what marshalKeyFile writes. It is strict: the header,
// then 1 to maxFileKeys lines of exactly three fields, distinct ids, and a
// final newline; anything else is an error naming the line.
func parseKeyFile(data []byte) ([]keyRecord, error) {
	text := string(data)
	if !strings.HasSuffix(text, "\n") {
		return nil, errors.New("truncated: no final newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[0] != keyFileHeader {
		return nil, fmt.Errorf("line 1: %.40q is not %q", lines[0], keyFileHeader)
	}
	lines = lines[1:]
	if len(lines) == 0 || len(lines) > maxFileKeys {
		return nil, fmt.Errorf("%d keys, want 1 to %d", len(lines), maxFileKeys)
	}
	recs := make([]keyRecord, 0, len(lines))
	for i, line := range lines {
		r, err := parseKeyLine(line)
		if err != nil {
			clearRecords(recs)
			return nil, fmt.Errorf("line %d: %w", i+2, err)
		}
		for _, o := range recs {
			if o.id == r.id {
				clearRecords(recs)
				return nil, fmt.Errorf("line %d: key id %08x repeated", i+2, r.id)
			}
		}
		recs = append(recs, r)
	}
	return recs, nil
}

func parseKeyLine(line string) (keyRecord, error) {
	var r keyRecord
	f := strings.Split(line, " ")
	if len(f) != 3 {
		return r, fmt.Errorf("%d fields, want 3 (id, created, key)", len(f))
	}
	if len(f[0]) != 8 {
		return r, errors.New("key id is not 8 hex digits")
	}
	id, err := strconv.ParseUint(f[0], 16, 32)
	if err != nil {
		return r, errors.New("key id is not 8 hex digits")
	}
	r.id = uint32(id)
	if r.created, err = time.Parse(time.RFC3339Nano, f[1]); err != nil {
		return r, errors.New("creation time is not RFC 3339")
	}
	if len(f[2]) != 2*keyLen {
		return r, fmt.Errorf("key is %d hex digits, want %d", len(f[2]), 2*keyLen)
	}
	if _, err := hex.Decode(r.secret[:], []byte(f[2])); err != nil {
		clear(r.secret[:])
		return r, errors.New("key is not hex")
	}
	return r, nil
}

func clearRecords(recs []keyRecord) {
	for i := range recs {
		clear(recs[i].secret[:])
	}
}

// loadKeyFile reads the ring's key file. A missing file is not an error: it
// returns no keys and the caller makes the first one. The file must pass
// keyfile.ReadSecret's checks (regular file owned by this user, no group or
// other permissions), like the signing keys.
func (r *keyRing) loadKeyFile() ([]masterKey, error) {
	data, err := keyfile.ReadSecret(r.path, keyfile.DefaultPolicy())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nts: cookie key file: %w", err)
	}
	defer clear(data)
	recs, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("nts: cookie key file %s: %w", r.path, err)
	}
	defer clearRecords(recs)
	keys := make([]masterKey, 0, len(recs))
	for _, rec := range recs {
		k, err := newMasterKey(rec.id, &rec.secret, rec.created)
		if err != nil {
			return nil, fmt.Errorf("nts: cookie key file %s: key %08x: %w", r.path, rec.id, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// save writes keys to the ring's file, if it has one, atomically (temporary
// file, fsync, rename, fsync of the directory) and with mode 0600.
func (r *keyRing) save(keys []masterKey) error {
	if r.path == "" {
		return nil
	}
	recs := make([]keyRecord, len(keys))
	for i, k := range keys {
		recs[i] = keyRecord{id: k.id, created: k.created, secret: k.secret}
	}
	data := marshalKeyFile(recs)
	clearRecords(recs)
	defer clear(data)
	if err := keyfile.WriteAtomic(r.path, data, 0o600); err != nil {
		return fmt.Errorf("nts: save cookie keys: %w", err)
	}
	return nil
}
