package modules

import (
	"path/filepath"
	"slices"
	"strings"
)

// Boundary is what a secondary lets the primary's configuration reach:
// the roots it writes under and the executables it accepts. The secondary
// decides it, not the primary: a module version that comes from the
// primary and widens it waits for the operator's approval on the
// secondary.
type Boundary struct {
	Roots       []string `toml:"roots" json:"roots"`
	Executables []string `toml:"executables" json:"executables"`
}

// BuiltinBoundary is the boundary before any approval: the tracked paths
// and executables of every built-in module (the software this binary
// knows), and the module files themselves (so that the primary's module
// versions reach the secondary, to be approved or not).
func BuiltinBoundary(opts Options) (Boundary, error) {
	bs, err := Builtins()
	if err != nil {
		return Boundary{}, err
	}
	var b Boundary
	for _, m := range bs {
		b.Roots = append(b.Roots, m.Tracked...)
		b.Executables = append(b.Executables, m.Executables...)
	}
	b.Roots = append(b.Roots, opts.SelectionFile, opts.Dir, opts.InstallDir)
	return b.normal(), nil
}

// Boundary is the boundary a module set asks for.
func (s *Set) Boundary() Boundary {
	return Boundary{Roots: s.TrackedPaths(), Executables: s.Executables()}.normal()
}

// Union is b widened by o.
func (b Boundary) Union(o Boundary) Boundary {
	return Boundary{Roots: append(slices.Clone(b.Roots), o.Roots...), Executables: append(slices.Clone(b.Executables), o.Executables...)}.normal()
}

func (b Boundary) normal() Boundary {
	clean := func(l []string) []string {
		out := make([]string, 0, len(l))
		for _, p := range l {
			out = append(out, filepath.Clean(p))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return Boundary{Roots: clean(b.Roots), Executables: clean(b.Executables)}
}

// Allows says whether path is within one of b's roots.
func (b Boundary) Allows(path string) bool {
	path = filepath.Clean(path)
	for _, r := range b.Roots {
		if path == r || strings.HasPrefix(path, r+"/") || r == "/" {
			return true
		}
	}
	return false
}

// Beyond lists what want asks for that b does not allow: roots outside
// every root of b, and executables b does not list.
func (b Boundary) Beyond(want Boundary) Boundary {
	var out Boundary
	for _, r := range want.Roots {
		if !b.Allows(r) {
			out.Roots = append(out.Roots, r)
		}
	}
	for _, e := range want.Executables {
		if !slices.Contains(b.Executables, filepath.Clean(e)) {
			out.Executables = append(out.Executables, e)
		}
	}
	return out.normal()
}

// Empty says whether b allows nothing.
func (b Boundary) Empty() bool { return len(b.Roots) == 0 && len(b.Executables) == 0 }
