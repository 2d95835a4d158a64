package apttrust

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// keyset is the keys gpgv checks one index with: keyring files, and when
// the source's signed-by names fingerprints, the keys of those files that
// may sign.
type keyset struct {
	files []string
	fprs  []string // upper-case; a trailing '!' takes that key only, not its subkeys
	err   error    // no keys: nothing is verified with this set
}

// keyrings makes the key sets of one SignedIndex, once each, and removes
// the dearmored copies after.
type keyrings struct {
	o    Options
	sets map[string]*keyset // by signed-by ("" for apt's trusted keys)
	tmps []string
}

func (k *keyrings) cleanup() {
	for _, t := range k.tmps {
		os.Remove(t)
	}
}

// removedKeys says whether a keyring is one of keys taken out of use
// (debian-archive-removed-keys.gpg), by its name or, for a symlink, its
// target's: never trusted.
func removedKeys(path string) bool {
	if strings.Contains(filepath.Base(path), "removed-keys") {
		return true
	}
	if t, err := filepath.EvalSymlinks(path); err == nil && strings.Contains(filepath.Base(t), "removed-keys") {
		return true
	}
	return false
}

// get is the key set of a source's signed-by, as apt reads it: an inline
// armored key block; or keyring paths (absolute) and fingerprints,
// separated by commas or spaces. Without keyring paths the keyrings are
// apt's trusted ones: /etc/apt/trusted.gpg and trusted.gpg.d/*.gpg|*.asc.
// /etc/apt/keyrings and /usr/share/keyrings are read only when named.
func (k *keyrings) get(signedBy string) *keyset {
	if ks, ok := k.sets[signedBy]; ok {
		return ks
	}
	ks := k.make(signedBy)
	k.sets[signedBy] = ks
	return ks
}

func (k *keyrings) make(signedBy string) *keyset {
	if signedBy == "" {
		return k.trusted()
	}
	if strings.Contains(signedBy, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		bin, err := dearmor([]byte(signedBy))
		if err != nil {
			return &keyset{err: fmt.Errorf("the key block of its signed-by: %w", err)}
		}
		f, err := k.write("signed-by key block", bin)
		if err != nil {
			return &keyset{err: err}
		}
		return &keyset{files: []string{f}}
	}
	ks := &keyset{}
	for _, item := range strings.FieldsFunc(signedBy, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if !strings.HasPrefix(item, "/") {
			ks.fprs = append(ks.fprs, strings.ToUpper(item))
			continue
		}
		if removedKeys(item) {
			return &keyset{err: fmt.Errorf("%s: a keyring of removed keys is never trusted", item)}
		}
		b, err := os.ReadFile(item)
		if err != nil {
			return &keyset{err: fmt.Errorf("signed-by keyring: %w", err)}
		}
		if filepath.Ext(item) == ".asc" {
			bin, err := dearmor(b)
			if err != nil {
				return &keyset{err: fmt.Errorf("%s: %w", item, err)}
			}
			f, err := k.write(item, bin)
			if err != nil {
				return &keyset{err: err}
			}
			ks.files = append(ks.files, f)
			continue
		}
		ks.files = append(ks.files, item)
	}
	if len(ks.files) == 0 {
		// Fingerprints only: keys of apt's trusted keyrings.
		t := k.get("")
		if t.err != nil {
			return &keyset{err: t.err}
		}
		ks.files = t.files
	}
	return ks
}

// trusted are apt's keys for a source without signed-by:
// EtcDir/trusted.gpg and EtcDir/trusted.gpg.d/*.gpg|*.asc (armored ones
// dearmored, as apt does). A keyring of removed keys is left out. A copy
// that cannot be written is an error: no signature is verified then.
func (k *keyrings) trusted() *keyset {
	legacy := filepath.Join(k.o.EtcDir, "trusted.gpg")
	parts := filepath.Join(k.o.EtcDir, "trusted.gpg.d")
	var out []string
	if fi, err := os.Stat(legacy); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 && !removedKeys(legacy) {
		out = append(out, legacy)
	}
	ents, _ := os.ReadDir(parts)
	for _, e := range ents {
		p := filepath.Join(parts, e.Name())
		if removedKeys(p) {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case ".gpg":
			out = append(out, p)
		case ".asc":
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			bin, err := dearmor(b)
			if err != nil {
				continue
			}
			f, err := k.write(p, bin)
			if err != nil {
				return &keyset{err: err}
			}
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return &keyset{err: fmt.Errorf("no apt keyring in %s or %s", legacy, parts)}
	}
	sort.Strings(out)
	return &keyset{files: out}
}

// write puts a dearmored key into a temporary file for gpgv. A copy that
// cannot be written is an error: gpgv never runs with a keyring cut short
// or missing.
func (k *keyrings) write(from string, bin []byte) (string, error) {
	f, err := k.o.createTemp(k.o.TempDir, "sentry-keyring-*.gpg")
	if err != nil {
		return "", fmt.Errorf("%s: no file for its dearmored copy: %w", from, err)
	}
	k.tmps = append(k.tmps, f.Name())
	_, err = f.Write(bin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%s: its dearmored copy for gpgv was not written: %w", from, err)
	}
	return f.Name(), nil
}

// dearmor decodes an ASCII-armored OpenPGP public key block.
func dearmor(b []byte) ([]byte, error) {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	var body strings.Builder
	state := 0 // 0 before BEGIN, 1 headers, 2 body
	for _, l := range lines {
		switch {
		case state == 0 && strings.HasPrefix(strings.TrimSpace(l), "-----BEGIN PGP PUBLIC KEY BLOCK"):
			state = 1
		case state == 1 && strings.TrimSpace(l) == "":
			state = 2
		case state == 1 && !strings.Contains(l, ":"):
			state = 2
			body.WriteString(strings.TrimSpace(l))
		case state == 2 && strings.HasPrefix(strings.TrimSpace(l), "-----END"):
			return base64.StdEncoding.DecodeString(body.String())
		case state == 2 && strings.HasPrefix(strings.TrimSpace(l), "="):
			// the CRC line
		case state == 2:
			body.WriteString(strings.TrimSpace(l))
		}
	}
	return nil, errors.New("no armored public key block")
}
