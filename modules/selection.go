package modules

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/tomlpos"
)

// SelectionSchema is the schema of the selection file this binary writes.
const SelectionSchema = 1

// HistoryLen is how many previously selected versions the selection file
// keeps per module, for rollback.
const HistoryLen = 5

// Selection is the selection file (/etc/sentry/modules.toml): per module,
// the version selected, whether it is pinned, whether it is switched off,
// and the versions selected before (newest last). A module the file does
// not name runs in its default version (see Load).
type Selection struct {
	// SchemaVersion of the file: absent in files written before it was
	// versioned, which are schema 1. A newer schema (written by a newer
	// primary and synced here) is read with the keys this binary knows,
	// and each other key is a Warning, as for manifests.
	SchemaVersion int                `toml:"schema_version" json:"schema_version"`
	Modules       map[string]*Choice `toml:"modules" json:"modules"`
	// Warnings are the keys of a newer schema that were ignored.
	Warnings []Warning `toml:"-" json:"-"`

	path string
	loc  *tomlpos.Locator
}

// Choice is one module's entry in the selection file.
type Choice struct {
	// Version selected; "" is the default one (modules.d, else built-in,
	// else the newest installed).
	Version string `toml:"version" json:"version,omitempty"`
	// Pinned: an install of a newer version does not select it.
	Pinned bool `toml:"pinned" json:"pinned"`
	// Disabled: the module is not selected at all.
	Disabled bool `toml:"disabled" json:"disabled"`
	// History are the versions selected before, oldest first.
	History []string `toml:"history" json:"history,omitempty"`
}

// ReadSelection reads the selection file; a missing file is an empty
// selection.
func ReadSelection(path string) (*Selection, error) {
	s := &Selection{Modules: map[string]*Choice{}, path: path, loc: tomlpos.New(nil)}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read module selection: %w", err)
	}
	// The selection is synced from the peer: bounded before parsing.
	if err := safetoml.Check(path, data, safetoml.Peer()); err != nil {
		return nil, decodeError(path, data, nil, err)
	}
	s.loc = tomlpos.New(data)
	md, err := toml.Decode(string(data), s)
	if err != nil {
		return nil, decodeError(path, data, s.loc, err)
	}
	switch {
	case s.SchemaVersion == 0:
		s.SchemaVersion = 1
	case s.SchemaVersion < 0:
		return nil, s.err("schema_version", "%d is not a schema version: write a whole number from 1 up", s.SchemaVersion)
	}
	for _, k := range undecoded(md, s.loc) {
		l, c := s.loc.Find(k)
		if s.SchemaVersion <= SelectionSchema {
			return nil, &Error{File: path, Line: l, Col: c, Key: k, Message: "unknown key (the file has schema_version, and per module version, pinned, disabled, history)"}
		}
		s.Warnings = append(s.Warnings, Warning{File: path, Line: l, Col: c, Key: k,
			Message: fmt.Sprintf("unknown key of selection schema %d (this binary knows schema %d): ignored", s.SchemaVersion, SelectionSchema)})
	}
	if s.Modules == nil {
		s.Modules = map[string]*Choice{}
	}
	for _, name := range sortedKeys(s.Modules) {
		ch := s.Modules[name]
		if !nameRe.MatchString(name) {
			return nil, s.err("modules."+name, "%q is not a valid module name", name)
		}
		if ch.Version != "" {
			if _, err := ParseVersion(ch.Version); err != nil {
				return nil, s.err("modules."+name+".version", "%v", err)
			}
		}
		for i, v := range ch.History {
			if _, err := ParseVersion(v); err != nil {
				return nil, s.err("modules."+name+".history", "entry %d: %v", i+1, err)
			}
		}
	}
	return s, nil
}

func (s *Selection) err(key, format string, args ...any) *Error {
	return keyError(s.path, s.loc, key, format, args...)
}

// clone is a deep copy, to change and check before writing.
func (s *Selection) clone() *Selection {
	c := &Selection{SchemaVersion: s.SchemaVersion, Modules: map[string]*Choice{}, path: s.path, loc: s.loc}
	for n, ch := range s.Modules {
		cc := *ch
		cc.History = append([]string(nil), ch.History...)
		c.Modules[n] = &cc
	}
	return c
}

// entry returns the module's entry, made when absent.
func (s *Selection) entry(name string) *Choice {
	ch := s.Modules[name]
	if ch == nil {
		ch = &Choice{}
		s.Modules[name] = ch
	}
	return ch
}

// push records v as selected before, the newest last, at most HistoryLen.
func (ch *Choice) push(v string) {
	if v == "" {
		return
	}
	h := ch.History[:0:0]
	for _, x := range ch.History {
		if x != v {
			h = append(h, x)
		}
	}
	h = append(h, v)
	if len(h) > HistoryLen {
		h = h[len(h)-HistoryLen:]
	}
	ch.History = h
}

// Encode writes the file's text: one table per module, in name order.
func (s *Selection) Encode() []byte {
	var b bytes.Buffer
	b.WriteString("# Module selection, written by `sentry modules` (docs/modules.md).\n")
	b.WriteString("# The secondary follows the primary's copy of this file.\n")
	// A file of a newer schema is written back as it was read: its keys
	// this binary does not know are lost, but it does not claim to be older.
	fmt.Fprintf(&b, "schema_version = %d\n", max(s.SchemaVersion, SelectionSchema))
	for _, name := range sortedKeys(s.Modules) {
		ch := s.Modules[name]
		fmt.Fprintf(&b, "\n[modules.%s]\n", name)
		if ch.Version != "" {
			fmt.Fprintf(&b, "version = %s\n", strconv.Quote(ch.Version))
		}
		fmt.Fprintf(&b, "pinned = %t\n", ch.Pinned)
		if ch.Disabled {
			b.WriteString("disabled = true\n")
		}
		if len(ch.History) > 0 {
			q := make([]string, len(ch.History))
			for i, v := range ch.History {
				q[i] = strconv.Quote(v)
			}
			fmt.Fprintf(&b, "history = [%s]\n", strings.Join(q, ", "))
		}
	}
	return b.Bytes()
}

// write replaces the selection file atomically.
func (s *Selection) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write module selection: %w", err)
	}
	return atomicfile.Write(path, s.Encode(), 0o644)
}
