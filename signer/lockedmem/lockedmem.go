package lockedmem

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"
)

// ErrLock is wrapped by New when the pages could not be locked, for
// example because RLIMIT_MEMLOCK is too small; errors.Is tells it apart
// from a failed allocation.
var ErrLock = errors.New("lockedmem: mlock failed")

// ErrClosed is returned for a buffer that was already wiped and unmapped.
var ErrClosed = errors.New("lockedmem: buffer closed")

// Options say what New must achieve.
type Options struct {
	// RequireLock makes New fail when mlock fails. Production mode sets it;
	// otherwise the buffer is kept unlocked (Locked reports false) and the
	// caller is expected to say so in its log.
	RequireLock bool
}

// Buffer is a page-aligned region of locked memory.
type Buffer struct {
	mu     sync.Mutex
	mem    []byte // the whole mapping
	size   int    // bytes asked for
	locked bool
	closed bool
	heap   bool // Go heap memory (NewHeap): unlocked, not unmapped, by Close
}

// beforeUnmap, when set by a test, sees the mapping after the wipe and
// before munmap, so that the wipe can be checked without touching
// unmapped memory.
var beforeUnmap func(mem []byte)

// New maps size bytes (rounded up to whole pages), excludes them from core
// dumps and locks them. With opts.RequireLock a failed mlock is an error
// wrapping ErrLock; without it the buffer is returned unlocked along with
// that error, so the caller can log it and go on.
func New(size int, opts Options) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("lockedmem: new: size %d", size)
	}
	mem, err := mapPages(size)
	if err != nil {
		return nil, fmt.Errorf("lockedmem: mmap %d bytes: %w", size, err)
	}
	b := &Buffer{mem: mem, size: size}
	if err := dontDump(mem); err != nil {
		_ = unmapPages(mem)
		return nil, fmt.Errorf("lockedmem: madvise(MADV_DONTDUMP): %w", err)
	}
	if err := lockPages(mem); err != nil {
		lerr := fmt.Errorf("%w: %d bytes: %v (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK= in the unit, or grant CAP_IPC_LOCK)", ErrLock, len(mem), err)
		if opts.RequireLock {
			_ = unmapPages(mem)
			return nil, lerr
		}
		return b, lerr
	}
	b.locked = true
	return b, nil
}

// NewHeap is New for memory that must be ordinary Go heap memory, for
// library code that takes weak pointers to key bytes (Go's crypto/ed25519
// caches the expanded key by the address of the private key since Go
// 1.25, which fails on memory the runtime did not allocate). The bytes sit
// alone in whole pages of a dedicated large allocation, and those pages
// are mlocked and excluded from core dumps like New's; Close wipes and
// unlocks them and leaves them to the garbage collector.
func NewHeap(size int, opts Options) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("lockedmem: new: size %d", size)
	}
	page := pageSize()
	n := (size + page - 1) / page * page
	// Larger than 32 KiB: the runtime gives it a span of its own.
	raw := make([]byte, max(n+page, 64<<10))
	off := int(uintptr(page)-uintptr(unsafe.Pointer(&raw[0]))%uintptr(page)) % page
	mem := raw[off : off+n : off+n]
	b := &Buffer{mem: mem, size: size, heap: true}
	if err := dontDump(mem); err != nil {
		return nil, fmt.Errorf("lockedmem: madvise(MADV_DONTDUMP): %w", err)
	}
	if err := lockPages(mem); err != nil {
		lerr := fmt.Errorf("%w: %d bytes: %v (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK= in the unit, or grant CAP_IPC_LOCK)", ErrLock, len(mem), err)
		if opts.RequireLock {
			return nil, lerr
		}
		return b, lerr
	}
	b.locked = true
	return b, nil
}

// Bytes returns the buffer's size bytes. The slice must not be used after
// Close.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	return b.mem[:b.size:b.size]
}

// Locked reports whether the pages are mlocked.
func (b *Buffer) Locked() bool { return b.locked }

// Wipe overwrites the whole mapping with zeros; the buffer stays usable.
func (b *Buffer) Wipe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		clear(b.mem)
	}
}

// Close wipes the buffer, unlocks and unmaps it. It is safe to call more
// than once.
func (b *Buffer) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	clear(b.mem)
	if beforeUnmap != nil {
		beforeUnmap(b.mem)
	}
	var errs []error
	if b.locked {
		if err := unlockPages(b.mem); err != nil {
			errs = append(errs, fmt.Errorf("lockedmem: munlock: %w", err))
		}
	}
	if b.heap {
		b.mem = nil
		return errors.Join(errs...)
	}
	if err := unmapPages(b.mem); err != nil {
		errs = append(errs, fmt.Errorf("lockedmem: munmap: %w", err))
	}
	b.mem = nil
	return errors.Join(errs...)
}

// Place returns a *T that lives at the start of b. T must contain no Go
// pointers (the garbage collector does not scan b) and must fit. The zero
// value is not assumed: the caller assigns the whole value.
func Place[T any](b *Buffer) (*T, error) {
	var zero T
	typ := reflect.TypeOf(zero)
	if hasPointers(typ) {
		return nil, fmt.Errorf("lockedmem: place %v: type holds Go pointers", typ)
	}
	mem := b.Bytes()
	if mem == nil {
		return nil, ErrClosed
	}
	if uintptr(len(mem)) < typ.Size() {
		return nil, fmt.Errorf("lockedmem: place %v: needs %d bytes, buffer has %d", typ, typ.Size(), len(mem))
	}
	p := unsafe.Pointer(&mem[0])
	if uintptr(p)%uintptr(typ.Align()) != 0 {
		return nil, fmt.Errorf("lockedmem: place %v: misaligned", typ)
	}
	return (*T)(p), nil
}

// SizeOf returns the bytes Place needs for a T.
func SizeOf[T any]() int {
	var zero T
	return int(unsafe.Sizeof(zero))
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	default:
		return true
	}
}
