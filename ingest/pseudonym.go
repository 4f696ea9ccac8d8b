package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// keyBytes is the length of a key LoadOrCreateKey creates; minKeyBytes is the
// shortest one it accepts from an operator.
const (
	keyBytes    = 32
	minKeyBytes = 16
)

// Pseudonymizer replaces card ids by a keyed hash, so that one card's
// swipes can be matched into trips and counted as distinct without the id
// itself being stored. The key is the operator's secret: without it the
// hashes cannot be linked back to cards by trying every card number.
//
// It is safe for concurrent use. The key is held only inside the hash
// states, so printing a Pseudonymizer does not reveal it.
type Pseudonymizer struct {
	cur  atomic.Pointer[keyState]
	prev atomic.Pointer[keyState] // the key before the last rotation, if any
}

// keyState is one key's pool of HMAC states and a digest telling keys apart.
type keyState struct {
	states sync.Pool // *cardHash
	digest [sha256.Size]byte
}

// cardHash is one reusable HMAC state with room for a card id and a sum.
type cardHash struct {
	mac hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// LoadOrCreateKey reads the hex-encoded key at path, or, when the file does
// not exist, creates it with 32 random bytes, mode 0600, written atomically
// (a temporary file linked into place, so concurrent starts agree on one
// key). A key file readable or writable by group or others is refused.
// Errors never quote the key.
func LoadOrCreateKey(path string) (*Pseudonymizer, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err = createKey(path); err != nil {
			return nil, err
		}
		key, err = readKey(path)
	}
	if err != nil {
		return nil, err
	}
	return newPseudonymizer(key), nil
}

func newPseudonymizer(key []byte) *Pseudonymizer {
	p := &Pseudonymizer{}
	p.cur.Store(newKeyState(key))
	return p
}

func newKeyState(key []byte) *keyState {
	k := &keyState{digest: sha256.Sum256(key)}
	k.states.New = func() any {
		return &cardHash{mac: hmac.New(sha256.New, key), in: make([]byte, 0, 64)}
	}
	return k
}

// Reload reads the key file again. A new key becomes the current one and
// the one it replaces is kept, so that trips opened under it still match
// their tap-out (see Previous); rotating again forgets it. It reports
// whether the key changed.
func (p *Pseudonymizer) Reload(path string) (bool, error) {
	key, err := readKey(path)
	if err != nil {
		return false, err
	}
	k := newKeyState(key)
	cur := p.cur.Load()
	if k.digest == cur.digest {
		return false, nil
	}
	p.prev.Store(cur)
	p.cur.Store(k)
	return true, nil
}

// Rotate writes a new random key over the key file at path (atomically,
// mode 0600) and makes it the current one, as Reload would: trips opened
// under the key it replaces still match.
func (p *Pseudonymizer) Rotate(path string) error {
	if err := writeKey(path, os.Rename); err != nil {
		return err
	}
	_, err := p.Reload(path)
	return err
}

// Card returns the 64-bit pseudonym of a raw card id under the current
// key: the first 8 bytes of HMAC-SHA256(key, raw), big-endian. It does not
// allocate in steady state.
func (p *Pseudonymizer) Card(raw string) uint64 {
	return p.cur.Load().card(raw)
}

// Previous returns the pseudonym of a raw card id under the key before the
// last rotation, if there was one.
func (p *Pseudonymizer) Previous(raw string) (uint64, bool) {
	k := p.prev.Load()
	if k == nil {
		return 0, false
	}
	return k.card(raw), true
}

func (k *keyState) card(raw string) uint64 {
	h := k.states.Get().(*cardHash)
	h.mac.Reset()
	// Copying into a kept buffer avoids the allocation of []byte(raw).
	h.in = append(h.in[:0], raw...)
	h.mac.Write(h.in)
	sum := h.mac.Sum(h.sum[:0])
	id := binary.BigEndian.Uint64(sum)
	clear(h.in)
	k.states.Put(h)
	return id
}

func readKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ingest: pseudonym key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ingest: pseudonym key %s has mode %04o, open to group or others; run chmod 600 %s", path, perm, path)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ingest: pseudonym key: %w", err)
	}
	text = bytes.TrimSpace(text)
	key := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(key, text); err != nil {
		// hex's error would quote a character of the key.
		return nil, fmt.Errorf("ingest: pseudonym key %s is not hex-encoded", path)
	}
	if len(key) < minKeyBytes {
		return nil, fmt.Errorf("ingest: pseudonym key %s has %d bytes; want at least %d", path, len(key), minKeyBytes)
	}
	return key, nil
}

// createKey writes a new random key to path unless the file exists: it
// links the key into place, which fails if another process got there
// first; the caller then reads whichever key won.
func createKey(path string) error {
	return writeKey(path, func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	})
}

// writeKey writes a new random key, hex-encoded, to a temporary file of
// mode 0600 in path's directory, puts it in place with install (a link
// that keeps an existing key, or a rename that replaces it) and makes that
// durable.
func writeKey(path string, install func(tmp, path string) error) error {
	var key [keyBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("ingest: pseudonym key: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("ingest: pseudonym key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; say so in case that ever changes.
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(hex.EncodeToString(key[:]) + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ingest: pseudonym key: writing %s: %w", tmp.Name(), err)
	}
	if err := install(tmp.Name(), path); err != nil {
		return fmt.Errorf("ingest: pseudonym key: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ingest: pseudonym key: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ingest: pseudonym key: syncing %s: %w", dir, err)
	}
	return nil
}
