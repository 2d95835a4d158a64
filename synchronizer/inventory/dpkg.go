package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrCorrupt is wrapped by every error that is the status file's fault (as
// opposed to an I/O error reading it).
var ErrCorrupt = errors.New("corrupt dpkg status")

// Package is one stanza of /var/lib/dpkg/status.
type Package struct {
	Name    string `json:"name" toml:"name"`
	Version string `json:"version" toml:"version"`
	Arch    string `json:"arch" toml:"arch"`
	// Status is the Status field as written: want, error flag, state
	// ("install ok installed", "hold ok installed", "deinstall ok config-files").
	Status string `json:"status" toml:"status"`
	Source string `json:"source,omitempty" toml:"source,omitempty"`
}

// Want is the first word of Status: install, hold, deinstall, purge, unknown.
func (p Package) Want() string { w, _, _ := strings.Cut(p.Status, " "); return w }

// State is the last word of Status: installed, config-files, half-installed...
func (p Package) State() string { return p.Status[strings.LastIndexByte(p.Status, ' ')+1:] }

// Held says whether the package is on hold (apt-mark hold).
func (p Package) Held() bool { return p.Want() == "hold" }

// Installed says whether the package's files are on disk and configured.
func (p Package) Installed() bool { return p.State() == "installed" }

// Key is name:arch, the identity dpkg gives a package.
func (p Package) Key() string { return p.Name + ":" + p.Arch }

// StatusError is a corrupt status file, at a line, for a package and a field
// when they are known.
type StatusError struct {
	File    string
	Line    int
	Package string
	Field   string
	Message string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	if e.Package != "" {
		fmt.Fprintf(&b, "package %q: ", e.Package)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q ", e.Field)
	}
	b.WriteString(e.Message)
	return b.String()
}

func (e *StatusError) Unwrap() error { return ErrCorrupt }

// ReadStatus parses the dpkg status file at path.
func ReadStatus(path string) ([]Package, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dpkg status: %w", err)
	}
	return ParseStatus(path, data)
}

var (
	wants  = map[string]bool{"unknown": true, "install": true, "hold": true, "deinstall": true, "purge": true}
	flags  = map[string]bool{"ok": true, "reinstreq": true, "hold": true, "hold-reinstreq": true}
	states = map[string]bool{"not-installed": true, "config-files": true, "half-installed": true, "unpacked": true,
		"half-configured": true, "triggers-awaited": true, "triggers-pending": true, "installed": true}
)

// ParseStatus parses the content of a dpkg status file; name is used in
// errors. It is stricter than dpkg on purpose, since dpkg always writes the
// file whole: a NUL byte (a zero-filled block after a crash), a line without
// a colon, a package name or version dpkg would refuse, a missing required field, a duplicate package or a
// file that does not end with the blank line after its last stanza are all
// errors naming the line.
func ParseStatus(name string, data []byte) ([]Package, error) {
	p := statusParser{name: name, pkgs: make([]Package, 0, len(data)/800+1)} // a stanza is ~900 bytes
	if len(data) == 0 {
		return nil, &StatusError{File: name, Line: 1, Message: "is empty: no package at all (truncated?)"}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, &StatusError{File: name, Line: 1 + bytes.Count(data[:i], []byte("\n")), Message: "NUL byte (zero-filled block?)"}
	}
	if data[len(data)-1] != '\n' {
		return nil, &StatusError{File: name, Line: 1 + bytes.Count(data, []byte("\n")), Message: "file ends in the middle of a line (truncated?)"}
	}
	line := 0
	inField := false // a continuation line belongs to a field
	for len(data) > 0 {
		line++
		nl := bytes.IndexByte(data, '\n')
		l := data[:nl]
		data = data[nl+1:]
		if len(l) == 0 {
			if err := p.end(line); err != nil {
				return nil, err
			}
			inField = false
			continue
		}
		if !p.open {
			p.open, p.start, p.cur = true, line, Package{}
			p.seen = [5]bool{}
		}
		if l[0] == ' ' || l[0] == '\t' {
			if !inField {
				return nil, p.errorf(line, "", "continuation line with no field before it")
			}
			continue
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return nil, p.errorf(line, "", "line is not \"Field: value\": %q", clip(l))
		}
		field := l[:colon]
		if bytes.IndexByte(field, ' ') >= 0 || bytes.IndexByte(field, '\t') >= 0 {
			return nil, p.errorf(line, "", "field name %q has a blank in it", clip(field))
		}
		inField = true
		value := bytes.TrimSpace(l[colon+1:])
		idx := -1
		switch string(field) {
		case "Package":
			idx = 0
			p.cur.Name = string(value)
		case "Status":
			idx = 1
			p.cur.Status = intern(value, "install ok installed", "hold ok installed", "deinstall ok config-files")
		case "Version":
			idx = 2
			p.cur.Version = string(value)
		case "Architecture":
			idx = 3
			p.cur.Arch = intern(value, "amd64", "all", "arm64", "i386")
		case "Source":
			idx = 4
			p.cur.Source = string(value)
		}
		if idx >= 0 {
			if p.seen[idx] {
				return nil, p.errorf(line, string(field), "given twice")
			}
			p.seen[idx] = true
			p.lines[idx] = line
		}
	}
	if p.open {
		return nil, p.errorf(line, "", "file ends without the blank line after its last stanza (truncated?)")
	}
	if len(p.pkgs) == 0 {
		return nil, &StatusError{File: name, Line: line, Message: "has no package at all (truncated?)"}
	}
	return p.pkgs, nil
}

type statusParser struct {
	name  string
	pkgs  []Package
	keys  map[string]int // name:arch -> line of its stanza, built lazily
	open  bool
	start int
	cur   Package
	seen  [5]bool // Package, Status, Version, Architecture, Source
	lines [5]int
}

func (p *statusParser) errorf(line int, field, format string, a ...any) error {
	return &StatusError{File: p.name, Line: line, Package: p.cur.Name, Field: field, Message: fmt.Sprintf(format, a...)}
}

// end closes the current stanza at the blank line, checking its fields.
func (p *statusParser) end(line int) error {
	if !p.open {
		return nil // blank lines between stanzas
	}
	p.open = false
	c := &p.cur
	if !p.seen[0] || c.Name == "" {
		return &StatusError{File: p.name, Line: p.start, Field: "Package", Message: "missing in the stanza starting here"}
	}
	if !validName(c.Name) {
		return &StatusError{File: p.name, Line: p.lines[0], Field: "Package", Message: fmt.Sprintf("%q is not a package name", clip([]byte(c.Name)))}
	}
	if !p.seen[1] {
		return p.errorf(p.start, "Status", "missing")
	}
	want, rest, _ := strings.Cut(c.Status, " ")
	flag, state, _ := strings.Cut(rest, " ")
	if !wants[want] || !flags[flag] || !states[state] {
		return p.errorf(p.lines[1], "Status", "is %q, not \"<want> <flag> <state>\"", c.Status)
	}
	if state != "not-installed" {
		if !p.seen[2] || c.Version == "" {
			return p.errorf(p.start, "Version", "missing")
		}
		if err := checkVersion(c.Version); err != "" {
			return p.errorf(p.lines[2], "Version", "%q: %s", c.Version, err)
		}
		if !p.seen[3] || c.Arch == "" {
			return p.errorf(p.start, "Architecture", "missing")
		}
		if !validName(c.Arch) {
			return p.errorf(p.lines[3], "Architecture", "%q is not an architecture", clip([]byte(c.Arch)))
		}
	}
	if p.keys == nil {
		p.keys = make(map[string]int, cap(p.pkgs))
	}
	key := c.Key()
	if first, dup := p.keys[key]; dup {
		return p.errorf(p.start, "", "listed twice (first at line %d)", first)
	}
	p.keys[key] = p.start
	p.pkgs = append(p.pkgs, *c)
	return nil
}

// validName follows dpkg: lower-case letters, digits, + - and ., starting
// with a letter or digit, at least two characters.
func validName(n string) bool {
	if len(n) < 2 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '+' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkVersion applies dpkg's rules for a version string: an optional
// numeric epoch, an upstream version starting with a digit, and an optional
// revision, with no blank in it. It returns "" when the version is valid.
func checkVersion(v string) string {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".+~-:", c) >= 0) {
			return fmt.Sprintf("character %q is not allowed in a version", c)
		}
	}
	up := v
	if e, rest, ok := strings.Cut(v, ":"); ok {
		if e == "" || strings.Trim(e, "0123456789") != "" {
			return "epoch is not a number"
		}
		up = rest
	}
	if i := strings.LastIndexByte(up, '-'); i >= 0 {
		if i == len(up)-1 {
			return "revision is empty"
		}
		up = up[:i]
	}
	if up == "" || up[0] < '0' || up[0] > '9' {
		return "does not start with a digit"
	}
	return ""
}

// intern returns the one of common that b spells, without allocating, or a
// new string: most packages share their status and architecture.
func intern(b []byte, common ...string) string {
	for _, c := range common {
		if string(b) == c {
			return c
		}
	}
	return string(b)
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}
