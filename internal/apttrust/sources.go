package apttrust

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrCorruptSources is a line of apt's sources that apt would refuse too.
var ErrCorruptSources = errors.New("corrupt apt sources")

// Source is one entry of apt's sources: a line of sources.list or a *.list
// file, or a stanza of a deb822 *.sources file.
type Source struct {
	File       string
	Line       int
	Types      []string // deb, deb-src
	URIs       []string
	Suites     []string
	Components []string
	// Disabled is an "Enabled: no" stanza: listed, not used by apt.
	Disabled bool
	// SignedBy is the signed-by option as written ([signed-by=...] of a
	// one-line entry, the Signed-By field of a stanza): absolute paths of
	// keyrings and key fingerprints, separated by commas or spaces; or, in
	// a stanza, an armored public key block. "" when the source has none.
	SignedBy string
	// Options are the source's other options by lower-case name
	// (check-valid-until, check-date, arch, ...), as written.
	Options map[string]string
}

// ReadSources reads dir/sources.list, dir/sources.list.d/*.list and
// dir/sources.list.d/*.sources, in apt's order. Files with other endings
// (.disabled, .save) are ignored, as apt does. An entry apt would refuse
// is an ErrCorruptSources that names the file and the line.
func ReadSources(dir string) ([]Source, error) {
	files := []string{filepath.Join(dir, "sources.list")}
	d := filepath.Join(dir, "sources.list.d")
	ents, err := os.ReadDir(d)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var more []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources")) {
			more = append(more, filepath.Join(d, n))
		}
	}
	sort.Strings(more)
	var out []Source
	for _, f := range append(files, more...) {
		var got []Source
		if strings.HasSuffix(f, ".sources") {
			got, err = readDeb822(f)
		} else {
			got, err = readOneLine(f)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// readOneLine reads "deb [ options ] uri suite [component...]" lines.
func readOneLine(path string) ([]Source, error) {
	var out []Source
	err := eachLine(path, func(name string, n int, l string) error {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			return nil
		}
		typ, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		s := Source{File: name, Line: n, Types: []string{typ}}
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return fmt.Errorf("%w: %s:%d: options not closed with ]", ErrCorruptSources, name, n)
			}
			for _, o := range strings.Fields(rest[1:end]) {
				k, v, ok := strings.Cut(o, "=")
				if !ok {
					continue
				}
				s.setOption(k, v)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if (typ != "deb" && typ != "deb-src") || len(f) < 2 {
			return fmt.Errorf("%w: %s:%d: not \"deb[-src] [options] <uri> <suite> [component...]\": %q", ErrCorruptSources, name, n, l)
		}
		s.URIs, s.Suites, s.Components = f[:1], f[1:2], f[2:]
		out = append(out, s)
		return nil
	})
	return out, err
}

// setOption records an option of a source (signed-by in SignedBy).
func (s *Source) setOption(k, v string) {
	k = strings.ToLower(strings.TrimSpace(k))
	if k == "signed-by" {
		s.SignedBy = strings.TrimSpace(v)
		return
	}
	if s.Options == nil {
		s.Options = map[string]string{}
	}
	s.Options[k] = strings.TrimSpace(v)
}

// readDeb822 reads the stanzas of a .sources file.
func readDeb822(path string) ([]Source, error) {
	var out []Source
	var cur *Source
	field := ""
	var raw []string // the lines of the field being read, for Signed-By
	end := func() {
		if cur != nil && field != "" && strings.EqualFold(field, "signed-by") {
			cur.SignedBy = strings.TrimSpace(strings.Join(raw, "\n"))
		}
		field, raw = "", nil
	}
	flush := func() error {
		end()
		if cur == nil {
			return nil
		}
		if len(cur.Types) == 0 || len(cur.URIs) == 0 || len(cur.Suites) == 0 {
			return fmt.Errorf("%w: %s:%d: stanza needs Types, URIs and Suites", ErrCorruptSources, cur.File, cur.Line)
		}
		out = append(out, *cur)
		cur = nil
		return nil
	}
	err := eachLine(path, func(name string, n int, l string) error {
		if strings.HasPrefix(l, "#") {
			return nil
		}
		if strings.TrimSpace(l) == "" {
			return flush()
		}
		if cur == nil {
			cur = &Source{File: name, Line: n}
		}
		var k, v string
		if l[0] == ' ' || l[0] == '\t' {
			// A continuation line: more words for the field above (a
			// line of an inline key block, " ." for an empty one).
			if field == "" {
				return fmt.Errorf("%w: %s:%d: continuation line with no field before it", ErrCorruptSources, name, n)
			}
			k, v = field, l
			line := strings.TrimSpace(l)
			if line == "." {
				line = ""
			}
			raw = append(raw, line)
		} else {
			var ok bool
			if k, v, ok = strings.Cut(l, ":"); !ok || strings.ContainsAny(k, " \t") {
				return fmt.Errorf("%w: %s:%d: not \"Field: value\": %q", ErrCorruptSources, name, n, l)
			}
			end()
			field, raw = k, []string{strings.TrimSpace(v)}
		}
		w := strings.Fields(v)
		switch strings.ToLower(k) {
		case "types":
			cur.Types = append(cur.Types, w...)
		case "uris":
			cur.URIs = append(cur.URIs, w...)
		case "suites":
			cur.Suites = append(cur.Suites, w...)
		case "components":
			cur.Components = append(cur.Components, w...)
		case "enabled":
			cur.Disabled = strings.EqualFold(strings.TrimSpace(v), "no")
		case "signed-by":
			// kept whole, line by line (end)
		default:
			if l[0] != ' ' && l[0] != '\t' {
				cur.setOption(k, v)
			} else {
				cur.Options[strings.ToLower(k)] += " " + strings.TrimSpace(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, flush()
}

// eachLine calls fn with each line of the file at path (its trailing
// blanks cut); a line it cannot read is an error naming the line.
func eachLine(path string, fn func(name string, n int, line string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 1
	for ; sc.Scan(); n++ {
		if err := fn(path, n, strings.TrimRight(sc.Text(), " \t\r")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s:%d: %w", path, n, err) // the line it could not read
	}
	return nil
}

// boolOption is a source's boolean option as apt reads it (yes, true,
// on, with, enable, 1; no, false, off, without, disable, 0), def when the
// source does not set it or sets something else.
func (s Source) boolOption(name string, def bool) bool {
	v, ok := s.Options[name]
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "on", "with", "enable", "1":
		return true
	case "no", "false", "off", "without", "disable", "0":
		return false
	}
	return def
}
