package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrCorruptSources is a line of apt's sources that apt would refuse too.
// It is an ErrCorrupt as well (errors.Is).
var ErrCorruptSources error = corruptKind("corrupt apt sources")

// corruptKind is a kind of corrupt file, named in its message, that is
// also ErrCorrupt.
type corruptKind string

func (k corruptKind) Error() string        { return string(k) }
func (k corruptKind) Is(target error) bool { return target == ErrCorrupt }

// AptSource is one entry of apt's sources: a line of sources.list or a
// *.list file, or a stanza of a deb822 *.sources file.
type AptSource struct {
	File       string   `json:"file" toml:"file"`
	Line       int      `json:"line" toml:"line"`
	Types      []string `json:"types" toml:"types"` // deb, deb-src
	URIs       []string `json:"uris" toml:"uris"`
	Suites     []string `json:"suites" toml:"suites"`
	Components []string `json:"components,omitempty" toml:"components,omitempty"`
	// Disabled is an "Enabled: no" stanza: listed, not used by apt.
	Disabled bool `json:"disabled,omitempty" toml:"disabled,omitempty"`
}

// Entries are the (type, URI, suite, component) combinations the source
// stands for, the unit Drift compares: "deb http://deb.debian.org/debian
// bookworm main".
func (s AptSource) Entries() []string {
	if s.Disabled {
		return nil
	}
	comps := s.Components
	if len(comps) == 0 {
		comps = []string{""} // a flat repository: the suite is a path
	}
	var out []string
	for _, t := range s.Types {
		for _, u := range s.URIs {
			u = strings.TrimSuffix(u, "/")
			for _, su := range s.Suites {
				for _, c := range comps {
					out = append(out, strings.TrimSpace(t+" "+u+" "+su+" "+c))
				}
			}
		}
	}
	return out
}

// ReadAptSources reads dir/sources.list, dir/sources.list.d/*.list and
// dir/sources.list.d/*.sources, in apt's order. Files with other endings
// (.disabled, .save) are ignored, as apt does.
func ReadAptSources(dir string) ([]AptSource, error) {
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
	var out []AptSource
	for _, f := range append(files, more...) {
		var got []AptSource
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
func readOneLine(path string) ([]AptSource, error) {
	var out []AptSource
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
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return fmt.Errorf("%w: %s:%d: options not closed with ]", ErrCorruptSources, name, n)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if (typ != "deb" && typ != "deb-src") || len(f) < 2 {
			return fmt.Errorf("%w: %s:%d: not \"deb[-src] [options] <uri> <suite> [component...]\": %q", ErrCorruptSources, name, n, l)
		}
		out = append(out, AptSource{File: name, Line: n, Types: []string{typ}, URIs: f[:1], Suites: f[1:2], Components: f[2:]})
		return nil
	})
	return out, err
}

// readDeb822 reads the stanzas of a .sources file.
func readDeb822(path string) ([]AptSource, error) {
	var out []AptSource
	var cur *AptSource
	field := ""
	flush := func() error {
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
			field = ""
			return flush()
		}
		if cur == nil {
			cur = &AptSource{File: name, Line: n}
		}
		var k, v string
		if l[0] == ' ' || l[0] == '\t' {
			// A continuation line: more words for the field above.
			if field == "" {
				return fmt.Errorf("%w: %s:%d: continuation line with no field before it", ErrCorruptSources, name, n)
			}
			k, v = field, l
		} else {
			var ok bool
			if k, v, ok = strings.Cut(l, ":"); !ok || strings.ContainsAny(k, " \t") {
				return fmt.Errorf("%w: %s:%d: not \"Field: value\": %q", ErrCorruptSources, name, n, l)
			}
		}
		field = k
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
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, flush()
}
