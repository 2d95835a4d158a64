package apttrust

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// trust is what a source says about how its index is checked.
type trust struct {
	signedBy        string // the source's signed-by; "" for apt's trusted keys
	from            string // the source(s), file:line ("" for a list no source names)
	checkValidUntil bool   // check-valid-until (default yes)
	checkDate       bool   // check-date (default yes)
}

// trustOf is a source's trust.
func trustOf(s Source) trust {
	return trust{signedBy: s.SignedBy, from: fmt.Sprintf("%s:%d", s.File, s.Line),
		checkValidUntil: s.boolOption("check-valid-until", true), checkDate: s.boolOption("check-date", true)}
}

// what says which keys a signature was checked with.
func (t trust) what() string {
	if t.signedBy == "" {
		return "the apt keyrings (trusted.gpg, trusted.gpg.d)"
	}
	sb := t.signedBy
	if strings.Contains(sb, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		sb = "its key block"
	}
	return fmt.Sprintf("the signed-by of its source %s (%s)", t.from, sb)
}

// repo is a signed index: an InRelease and where the files it lists are.
type repo struct {
	base      string                  // a file: repository's root ("" for apt's lists)
	inRelease string                  // the InRelease file
	local     func(rel string) string // where a file InRelease lists is kept here
	trust     trust
	err       error // its sources disagree: not used
}

func (r repo) packagesFiles() []string {
	// Not verified: for locating a file only (Check checks it).
	dir := filepath.Dir(r.inRelease)
	var out []string
	for _, n := range []string{"Packages", "Packages.gz"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			out = append(out, filepath.Join(dir, n))
		}
	}
	ms, _ := filepath.Glob(filepath.Join(dir, "*", "binary-*", "Packages*"))
	return append(out, ms...)
}

// repos are the signed indexes of this node: those of the local (file:)
// repositories of apt's sources, and apt's lists, each with its source's
// trust. Unreadable sources are an error (ErrSources): the lists are then
// all checked as those of a source without signed-by.
func (o Options) repos() ([]repo, []error) {
	var errs []error
	srcs, err := ReadSources(o.EtcDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrSources, err))
		srcs = nil
	}
	return append(localRepos(srcs), o.listRepos(srcs)...), errs
}

// localRepos are the file: repositories of the sources.
func localRepos(srcs []Source) []repo {
	var out []repo
	seen := map[string]int{}
	for _, s := range srcs {
		if s.Disabled {
			continue
		}
		for _, u := range s.URIs {
			root, ok := strings.CutPrefix(u, "file:")
			if !ok {
				continue
			}
			root = "/" + strings.TrimLeft(root, "/")
			for _, suite := range s.Suites {
				dir := filepath.Join(root, "dists", suite)
				if strings.HasSuffix(suite, "/") || len(s.Components) == 0 {
					dir = filepath.Join(root, suite) // a flat repository
				}
				r := repo{base: root, inRelease: filepath.Join(dir, "InRelease"),
					local: func(rel string) string { return filepath.Join(dir, rel) }, trust: trustOf(s)}
				if i, ok := seen[r.inRelease]; ok {
					out[i] = merge(out[i], r)
					continue
				}
				seen[r.inRelease] = len(out)
				out = append(out, r)
			}
		}
	}
	return out
}

// merge is one index named by two sources (deb and deb-src, or a source
// twice): they must agree on signed-by, as apt requires.
func merge(a, b repo) repo {
	if a.err != nil {
		return a
	}
	if a.trust.signedBy != b.trust.signedBy {
		a.err = fmt.Errorf("its sources %s and %s disagree on signed-by: not used (apt refuses them too)", a.trust.from, b.trust.from)
		return a
	}
	a.trust.from += ", " + b.trust.from
	a.trust.checkValidUntil = a.trust.checkValidUntil || b.trust.checkValidUntil
	a.trust.checkDate = a.trust.checkDate || b.trust.checkDate
	return a
}

// listRepos are the indexes apt downloaded into its lists, each with the
// trust of the source apt named it after; a list no source names is
// checked as one of a source without signed-by.
func (o Options) listRepos(srcs []Source) []repo {
	named := map[string]repo{} // list file name -> its sources' trust
	for _, s := range srcs {
		if s.Disabled {
			continue
		}
		for _, u := range s.URIs {
			for _, suite := range s.Suites {
				name := listName(metaIndexURI(u, suite, "InRelease"))
				r := repo{inRelease: name, trust: trustOf(s)}
				if old, ok := named[name]; ok {
					r = merge(old, r)
				}
				named[name] = r
			}
		}
	}
	ms, _ := filepath.Glob(filepath.Join(o.ListsDir, "*_InRelease"))
	sort.Strings(ms)
	var out []repo
	for _, m := range ms {
		prefix := strings.TrimSuffix(m, "InRelease")
		r, ok := named[filepath.Base(m)]
		if !ok {
			r = repo{trust: trust{checkValidUntil: true, checkDate: true}}
		}
		r.inRelease = m
		r.local = func(rel string) string { return prefix + strings.ReplaceAll(rel, "/", "_") }
		out = append(out, r)
	}
	return out
}

// metaIndexURI is the URI apt fetches a source's file (InRelease) from:
// uri/dists/suite/file, or uri/suite/file for a flat repository (a suite
// ending in "/").
func metaIndexURI(uri, suite, file string) string {
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	switch {
	case suite == "/":
		return uri + file
	case strings.HasSuffix(suite, "/"):
		return uri + suite + file
	}
	return uri + "dists/" + suite + "/" + file
}

// listName is the name apt gives, in its lists folder, to the file of a
// URI (apt's URItoFileName): the URI without its scheme, user and
// password, the characters apt quotes as %xx, each '/' as '_'.
func listName(uri string) string {
	rest := uri
	if i := strings.IndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[:i], "/") {
		rest = rest[i+1:]
	}
	host, path := "", rest
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		host, path = rest, ""
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			host, path = rest[:i], rest[i:]
		}
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var b strings.Builder
	for _, c := range []byte(host + path) {
		switch {
		case c <= 0x20 || c >= 0x7f || strings.IndexByte(`\|{}[]<>"^~_=!@#$%^&*`, c) >= 0:
			fmt.Fprintf(&b, "%%%02x", c)
		case c == '/':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
