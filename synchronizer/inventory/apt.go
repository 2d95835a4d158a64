package inventory

import (
	"errors"
	"strings"

	"github.com/sentryha/sentry/internal/apttrust"
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
// dir/sources.list.d/*.sources, in apt's order (apttrust.ReadSources, the
// parser the package trust uses too). Files with other endings
// (.disabled, .save) are ignored, as apt does.
func ReadAptSources(dir string) ([]AptSource, error) {
	srcs, err := apttrust.ReadSources(dir)
	if errors.Is(err, apttrust.ErrCorruptSources) {
		return nil, corruptSources{err}
	}
	if err != nil {
		return nil, err
	}
	var out []AptSource
	for _, s := range srcs {
		out = append(out, AptSource{File: s.File, Line: s.Line, Types: s.Types, URIs: s.URIs,
			Suites: s.Suites, Components: s.Components, Disabled: s.Disabled})
	}
	return out, nil
}

// corruptSources is apttrust's ErrCorruptSources as this package's:
// ErrCorruptSources and ErrCorrupt, with the same message.
type corruptSources struct{ err error }

func (e corruptSources) Error() string { return e.err.Error() }
func (e corruptSources) Unwrap() error { return e.err }
func (e corruptSources) Is(target error) bool {
	return target == ErrCorruptSources || target == ErrCorrupt
}
