package privacy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreateSecret reads the hex-encoded secret the layer keys its noise
// with from path, or creates it with 32 random bytes, mode 0600, when the
// file does not exist. It is not the card key: rotating the card key must
// not draw new noise for figures already released. A file open to group
// or others is refused; errors never quote the secret.
func LoadOrCreateSecret(path string) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createSecret(path); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("privacy: secret: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("privacy: secret %s has mode %04o, open to group or others; run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("privacy: secret: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("privacy: secret %s: want at least 16 bytes as hex", path)
	}
	return secret, nil
}

// createSecret writes a new secret through a temporary file linked into
// place, so that two processes starting at once agree on one.
func createSecret(path string) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("privacy: secret: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".privacy-secret-*")
	if err != nil {
		return fmt.Errorf("privacy: secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("privacy: secret: %w", err)
	}
	_, err = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("privacy: secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("privacy: secret: %w", err)
	}
	return nil
}
