// Package safetoml bounds a TOML document before BurntSushi/toml parses it.
//
// That parser's cost grows with the square of a key's depth (upstream issue
// #496, no fixed release): every dotted key, table header and inline table
// registers each prefix of its path as a new string, so a 16 KB file of
// nested inline tables takes seconds and gigabytes, and a 200 KB one more
// than the machine has. Sentry parses files that come from the peer
// (@meta.toml, refused.toml, module manifests and the selection,
// machines.toml, hardware profiles) and files read at boot (the disk stamp,
// cluster.toml, sentry.toml). Check scans the text once, lexically (strings,
// multi-line strings, comments, headers, dotted keys, inline tables and
// arrays), in time linear in its size and memory bounded by MaxDepth, and
// refuses a document that is too large, nested too deep or has too many
// keys, naming the line and the limit. Decode, ReadFile and DecodeFile put it
// in front of the parser.
//
// The scan does not validate: a document it passes may still be refused by
// the parser, with the parser's message. It never counts less than the
// parser would see: a bracket is only skipped inside what is surely a string
// or a comment.
package safetoml

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/BurntSushi/toml"
)

// Limits bound one document.
type Limits struct {
	// MaxBytes is the largest document, in bytes.
	MaxBytes int
	// MaxDepth is the deepest key: the parts of its table header, plus the
	// parts of its dotted key, plus one per inline table or array it is
	// in ([a.b] c.d = 1 is 4 deep; x = [[1]] is 3).
	MaxDepth int
	// MaxKeys bounds the keys, table headers and inline tables, each
	// counted once per level of its depth ([a.b] c.d = 1 counts 2 for the
	// header and 4 for the key). Weighted so, the parser's cost per count
	// is no more than that of a flat key, whatever the nesting.
	MaxKeys int
}

// The sizes of the presets: Sentry's own files are far smaller (a stamp is
// 400 bytes, sentry.toml a few KB, a directory's @meta.toml about 90 bytes
// per entry), so a file at a limit is not one Sentry or a person wrote.
const (
	SmallBytes = 64 << 10 // 64 KiB
	PeerBytes  = 1 << 20  // 1 MiB
	LargeBytes = 16 << 20 // 16 MiB
)

// MaxDepth is the depth of every preset. Sentry's deepest keys are 3 deep
// (alert.mail.to, [probes.params] x, [[machine.nic]] mac), 4 with an array
// value; the parser's cost per key at depth 8 is about five times that of
// a flat key.
const MaxDepth = 8

// Small is for files of a few dozen keys read at boot or written by hand:
// the disk stamp, cluster.toml, sentry.toml, canary.toml.
func Small() Limits { return Limits{MaxBytes: SmallBytes, MaxDepth: MaxDepth, MaxKeys: 8 << 10} }

// Peer is for files that come from the peer or are synced from it:
// @meta.toml and refused.toml, module manifests and the selection,
// machines.toml, hardware profiles. 1 MiB is about 11,000 entries of one
// directory's @meta.toml. Measured (2 cores): the costliest documents these
// limits pass (flat keys, dotted keys 8 deep, headers, arrays of tables,
// nested inline tables, each grown to the limit) take the parser under a
// second and about 110 MB of allocations; unbounded, 16 KB of nested
// inline tables take 3 s and 1.9 GB.
func Peer() Limits { return Limits{MaxBytes: PeerBytes, MaxDepth: MaxDepth, MaxKeys: 128 << 10} }

// Large is for state files Sentry writes for itself and never receives
// (a TOML inventory: every package, kernel module and firmware file).
func Large() Limits { return Limits{MaxBytes: LargeBytes, MaxDepth: MaxDepth, MaxKeys: 2 << 20} }

// ErrLimit is wrapped by every *Error.
var ErrLimit = errors.New("TOML document over a limit")

// What limit an *Error names.
const (
	LimitSize  = "size"
	LimitDepth = "depth"
	LimitKeys  = "keys"
)

// Error is a document refused before parsing.
type Error struct {
	File    string // "" when the caller names the file itself
	Line    int    // 0 for the size
	Limit   string // LimitSize, LimitDepth or LimitKeys
	Got     int64  // the size, the depth, or the count when it passed Max
	Max     int
	Message string // without file and line
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	case e.File != "":
		return e.File + ": " + e.Message
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return e.Message
}

// Unwrap makes errors.Is(err, ErrLimit) true.
func (e *Error) Unwrap() error { return ErrLimit }

func sizeError(file string, size int64, max int) *Error {
	return &Error{File: file, Limit: LimitSize, Got: size, Max: max,
		Message: fmt.Sprintf("%d bytes, over the limit of %d for this file (refused before parsing)", size, max)}
}

// Check refuses data when it passes a limit of lim (a zero field is no
// limit); file names the document in the error ("" leaves it out).
func Check(file string, data []byte, lim Limits) error {
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return sizeError(file, int64(len(data)), lim.MaxBytes)
	}
	s := scanner{data: data, lim: lim, line: 1, file: file}
	return s.run()
}

// Decode checks data against lim, then decodes it into v with
// BurntSushi/toml.
func Decode(file string, data []byte, v any, lim Limits) (toml.MetaData, error) {
	if err := Check(file, data, lim); err != nil {
		return toml.MetaData{}, err
	}
	return toml.Decode(string(data), v)
}

// ReadFile reads the file at path, refusing one larger than lim.MaxBytes
// without reading more than that.
func ReadFile(path string, lim Limits) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if lim.MaxBytes <= 0 {
		return io.ReadAll(f)
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > int64(lim.MaxBytes) {
		return nil, sizeError(path, fi.Size(), lim.MaxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(lim.MaxBytes)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > lim.MaxBytes {
		e := sizeError(path, int64(len(data)), lim.MaxBytes)
		e.Message = fmt.Sprintf("more than %d bytes, the limit for this file (refused before parsing)", lim.MaxBytes)
		return nil, e
	}
	return data, nil
}

// DecodeFile is ReadFile and Decode; errors name path.
func DecodeFile(path string, v any, lim Limits) (toml.MetaData, error) {
	data, err := ReadFile(path, lim)
	if err != nil {
		return toml.MetaData{}, err
	}
	md, err := Decode(path, data, v, lim)
	if err != nil {
		var le *Error
		if !errors.As(err, &le) {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	return md, err
}

// scanner walks a document the way the TOML lexer does, as far as
// nesting goes: it knows strings, comments, table headers, dotted keys,
// inline tables and arrays, and nothing of values.
type scanner struct {
	data  []byte
	i     int
	line  int
	file  string
	lim   Limits
	keys  int64
	base  int     // depth of the current [table] or [[array]] header
	stack []frame // open inline tables and arrays
	key   int     // depth of the last key read: its value's nesting starts there
}

type frame struct {
	table bool // '{' (else '[')
	depth int  // depth of the keys of a table, of the elements of an array
}

func (s *scanner) run() error {
	expectKey := true // at the start of a line at top level, after '{' or ','
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch c {
		case '\n':
			s.line++
			s.i++
			if len(s.stack) == 0 {
				expectKey = true
			}
			continue
		case ' ', '\t', '\r':
			s.i++
			continue
		case '#':
			s.skipComment()
			continue
		}
		if expectKey {
			expectKey = false
			if c == '[' && len(s.stack) == 0 {
				if err := s.header(); err != nil {
					return err
				}
				continue
			}
			if isBare(c) || c == '"' || c == '\'' {
				parts := s.dottedKey()
				if err := s.count(s.container() + parts); err != nil {
					return err
				}
				s.key = s.container() + parts
				continue
			}
		}
		switch c {
		case '"', '\'':
			s.skipString()
		case '{':
			d := s.valueDepth()
			if err := s.count(d); err != nil {
				return err
			}
			s.stack = append(s.stack, frame{table: true, depth: d})
			s.i++
			expectKey = true
		case '[':
			d := s.valueDepth() + 1
			if err := s.depth(d); err != nil {
				return err
			}
			s.stack = append(s.stack, frame{depth: d})
			s.i++
		case '}', ']':
			if len(s.stack) > 0 {
				s.stack = s.stack[:len(s.stack)-1]
			}
			s.i++
		case ',':
			if n := len(s.stack); n > 0 && s.stack[n-1].table {
				expectKey = true
			}
			s.i++
		default:
			s.i++
		}
	}
	return nil
}

// container is the depth the keys read now start from.
func (s *scanner) container() int {
	if n := len(s.stack); n > 0 {
		return s.stack[n-1].depth
	}
	return s.base
}

// valueDepth is the depth of a value opened now: an element of the array
// it is in, else the value of the key read last.
func (s *scanner) valueDepth() int {
	if n := len(s.stack); n > 0 && !s.stack[n-1].table {
		return s.stack[n-1].depth
	}
	return s.key
}

func (s *scanner) depth(d int) error {
	if s.lim.MaxDepth > 0 && d > s.lim.MaxDepth {
		return &Error{File: s.file, Line: s.line, Limit: LimitDepth, Got: int64(d), Max: s.lim.MaxDepth,
			Message: fmt.Sprintf("keys nested %d deep, over the limit of %d (refused before parsing)", d, s.lim.MaxDepth)}
	}
	return nil
}

// count checks a key, header or inline table at depth d, and counts it.
func (s *scanner) count(d int) error {
	if err := s.depth(d); err != nil {
		return err
	}
	s.keys += int64(max(d, 1))
	if s.lim.MaxKeys > 0 && s.keys > int64(s.lim.MaxKeys) {
		return &Error{File: s.file, Line: s.line, Limit: LimitKeys, Got: s.keys, Max: s.lim.MaxKeys,
			Message: fmt.Sprintf("more than %d keys and tables, each counted once per level of its depth (refused before parsing)", s.lim.MaxKeys)}
	}
	return nil
}

// header reads "[a.b]" or "[[a.b]]" from its first bracket.
func (s *scanner) header() error {
	s.i++
	array := s.i < len(s.data) && s.data[s.i] == '['
	if array {
		s.i++
	}
	parts := s.dottedKey()
	if err := s.count(parts); err != nil {
		return err
	}
	s.base = parts
	s.skipBlanks()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		if array && s.i < len(s.data) && s.data[s.i] == ']' {
			s.i++
		}
	}
	return nil
}

// dottedKey reads a key (bare, quoted and dotted parts, blanks between)
// and returns how many parts it has.
func (s *scanner) dottedKey() int {
	parts := 0
	for {
		s.skipBlanks()
		if s.i >= len(s.data) {
			return parts
		}
		switch c := s.data[s.i]; {
		case c == '"' || c == '\'':
			s.skipString()
		case isBare(c):
			for s.i < len(s.data) && isBare(s.data[s.i]) {
				s.i++
			}
		default:
			return parts
		}
		parts++
		s.skipBlanks()
		if s.i >= len(s.data) || s.data[s.i] != '.' {
			return parts
		}
		s.i++
	}
}

func (s *scanner) skipBlanks() {
	for s.i < len(s.data) && (s.data[s.i] == ' ' || s.data[s.i] == '\t') {
		s.i++
	}
}

// skipComment skips to the end of the line (the newline is left).
func (s *scanner) skipComment() {
	for s.i < len(s.data) && s.data[s.i] != '\n' {
		s.i++
	}
}

// skipString skips a string from its opening quote: basic or literal,
// one line or multi-line. A one-line string ends at the end of the line
// even when unterminated (the parser refuses it), so that a stray quote
// hides nothing from the scan but the rest of its line.
func (s *scanner) skipString() {
	q := s.data[s.i]
	if s.run3(q) {
		s.i += 3
		for s.i < len(s.data) {
			c := s.data[s.i]
			switch {
			case c == '\\' && q == '"':
				s.i++
				if s.i < len(s.data) && s.data[s.i] == '\n' {
					s.line++
				}
				s.i++
			case c == '\n':
				s.line++
				s.i++
			case c == q && s.run3(q):
				// Up to two more quotes belong to the content: """a""""" is a"".
				s.i += 3
				for k := 0; k < 2 && s.i < len(s.data) && s.data[s.i] == q; k++ {
					s.i++
				}
				return
			default:
				s.i++
			}
		}
		return
	}
	s.i++
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '\n':
			return
		case c == '\\' && q == '"':
			s.i++
			if s.i < len(s.data) && s.data[s.i] != '\n' {
				s.i++
			}
		case c == q:
			s.i++
			return
		default:
			s.i++
		}
	}
}

// run3 says whether three quotes q start at s.i.
func (s *scanner) run3(q byte) bool {
	return s.i+2 < len(s.data) && s.data[s.i] == q && s.data[s.i+1] == q && s.data[s.i+2] == q
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
