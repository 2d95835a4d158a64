package modules

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/tomlpos"
)

// ErrInvalid is wrapped by every error that is a manifest's or the
// selection file's fault (not an I/O error). It wraps config.ErrInvalid, so
// the CLI exits 3 for it as for a bad sentry.toml.
var ErrInvalid = fmt.Errorf("invalid module manifest or selection: %w", config.ErrInvalid)

// Error is a problem at a place in a manifest or in the selection file.
type Error struct {
	File    string
	Line    int // 0 when the key is absent from the file
	Col     int
	Key     string // dotted key ("probes[2].kind"); "" for a syntax error
	Message string
	Context string // the lines around a syntax error, with a caret
}

func (e *Error) Error() string { return position(e.File, e.Line, e.Col, e.Key) + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) and errors.Is(err,
// config.ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Warning is something a manifest says that this binary does not
// understand (a key of a newer schema), or a file that was skipped.
type Warning struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string { return position(w.File, w.Line, w.Col, w.Key) + w.Message }

func position(file string, line, col int, key string) string {
	var b strings.Builder
	b.WriteString(file)
	if line > 0 {
		fmt.Fprintf(&b, ":%d:%d", line, col)
	}
	b.WriteString(": ")
	if key != "" {
		fmt.Fprintf(&b, "key %q: ", key)
	}
	return b.String()
}

// keyError is an error at key, placed by loc.
func keyError(file string, loc *tomlpos.Locator, key, format string, args ...any) *Error {
	l, c := loc.Find(key)
	return &Error{File: file, Line: l, Col: c, Key: key, Message: fmt.Sprintf(format, args...)}
}

var tomlLineErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// decodeError turns an error of the TOML decoder (or of safetoml's check
// before it) into an *Error with the file, line, column and key; data is
// the document, for the context of a syntax error.
func decodeError(file string, data []byte, loc *tomlpos.Locator, err error) *Error {
	var le *safetoml.Error
	if errors.As(err, &le) {
		e := &Error{File: file, Line: le.Line, Message: le.Message}
		if e.Line > 0 {
			e.Col = 1
		}
		return e
	}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.Position.Line == 0 { // an error at the end of the file
			pe.Position.Line, pe.Position.Col = tomlpos.LineCol(data, pe.Position.Start)
		}
		e := &Error{File: file, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Message: pe.Message}
		if pe.Position.Line > 0 {
			e.Context = tomlpos.Context(data, pe.Position.Line, pe.Position.Col, pe.Position.Len, pe.Message)
		}
		return e
	}
	if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		l, c, key := loc.Near(m[2], line)
		if l == 0 {
			l, c = line, 1
		}
		return &Error{File: file, Line: l, Col: c, Key: key, Message: m[3]}
	}
	return &Error{File: file, Message: err.Error()}
}

// undecoded lists the keys the decoder left over, outermost only (an
// unknown table is named once, not with each key in it), in file order.
func undecoded(md toml.MetaData, loc *tomlpos.Locator) []string {
	var keys []string
	seen := map[string]bool{}
	for _, k := range md.Undecoded() {
		s := k.String()
		seen[s] = true
		parent := false
		for i := len(k) - 1; i > 0; i-- {
			if seen[toml.Key(k[:i]).String()] {
				parent = true
				break
			}
		}
		if !parent {
			keys = append(keys, s)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		li, _ := loc.Find(keys[i])
		lj, _ := loc.Find(keys[j])
		return li < lj
	})
	return keys
}

// suggest returns a "did you mean" hint among known keys.
func suggest(k string, known []string) string { return config.Suggest(k, known) }
