package synchronizer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// Secrets encrypts secret files to the cluster key (age, X25519), for an
// operator who opts in (sync.encrypt_secrets): private keys and password
// files then cross to the secondary encrypted, never in plaintext. Without
// it they are left out.
type Secrets struct {
	id     *age.X25519Identity
	macKey []byte
}

// NewClusterKey makes a cluster key (an age X25519 identity, as text).
func NewClusterKey() (string, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// NewSecrets reads a cluster key.
func NewSecrets(key string) (*Secrets, error) {
	id, err := age.ParseX25519Identity(strings.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	m := sha256.Sum256([]byte("sentry secret mac\x00" + id.String()))
	return &Secrets{id: id, macKey: m[:]}, nil
}

// Encrypt encrypts data to the cluster key.
func (s *Secrets) Encrypt(data []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := age.Encrypt(&out, s.id.Recipient())
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Decrypt decrypts what Encrypt made.
func (s *Secrets) Decrypt(ct []byte) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ct), s.id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, maxFileSize+1))
}

// MAC tells whether a secret changed without storing a plain hash of it
// (a password's plain hash could be guessed back): HMAC-SHA256 under a key
// derived from the cluster key.
func (s *Secrets) MAC(data []byte) string {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}
