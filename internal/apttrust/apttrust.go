// Package apttrust says which .deb files the signed apt indexes of a node
// vouch for, as apt would: an InRelease whose signature gpgv verifies with
// the keys apt allows for its source (the source's signed-by, else
// /etc/apt/trusted.gpg and trusted.gpg.d), that has not expired
// (Valid-Until) and is not dated ahead of the clock (Date); the Packages
// files whose SHA-256 that InRelease lists; and the packages of those
// files by their SHA-256 (docs/parity.md, "The signed-index rule").
//
// The indexes read are those of apt's lists (/var/lib/apt/lists) and of
// the local (file:) repositories of apt's sources.
package apttrust

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The defaults of Options' fields.
const (
	DefaultEtcDir   = "/etc/apt"
	DefaultListsDir = "/var/lib/apt/lists"
	DefaultGpgv     = "gpgv"
	// DefaultMaxFuture is apt's Acquire::Max-FutureTime.
	DefaultMaxFuture = 10 * time.Second
)

// Options say where apt's files are; the zero value is the system's.
type Options struct {
	// EtcDir is apt's configuration folder (/etc/apt): the sources
	// (sources.list, sources.list.d) and the keys trusted for a source
	// without signed-by (trusted.gpg, trusted.gpg.d/*.gpg|*.asc).
	EtcDir string
	// ListsDir holds the indexes apt downloaded (/var/lib/apt/lists).
	ListsDir string
	// Gpgv is the gpgv command.
	Gpgv string
	// TempDir is where armored keys are dearmored for gpgv ("": the
	// system's temporary folder).
	TempDir string
	// Now is the clock Valid-Until and Date are checked against (nil:
	// time.Now).
	Now func() time.Time
	// MaxFuture is how far ahead of Now a Release's Date may be (0:
	// DefaultMaxFuture).
	MaxFuture time.Duration

	// createTemp makes a dearmored key's file (nil: os.CreateTemp); the
	// package's tests make it fail.
	createTemp func(dir, pattern string) (*os.File, error)
}

func (o Options) withDefaults() Options {
	if o.EtcDir == "" {
		o.EtcDir = DefaultEtcDir
	}
	if o.ListsDir == "" {
		o.ListsDir = DefaultListsDir
	}
	if o.Gpgv == "" {
		o.Gpgv = DefaultGpgv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxFuture == 0 {
		o.MaxFuture = DefaultMaxFuture
	}
	if o.createTemp == nil {
		o.createTemp = os.CreateTemp
	}
	return o
}

// ErrSources: apt's sources could not be read, so the local (file:)
// repositories are unknown, and so is which source each of apt's lists
// is of; apt itself refuses to run then.
var ErrSources = errors.New("the local apt repositories are not known")

// Package names one package file: name, architecture and version.
type Package struct {
	Name    string
	Arch    string
	Version string
}

func (p Package) String() string { return p.Name + ":" + p.Arch + "=" + p.Version }

// CacheName is the name apt gives p's file in its cache and with apt-get
// download: name_version_arch.deb, the version's ':' as %3a.
func CacheName(p Package) string {
	return p.Name + "_" + strings.ReplaceAll(url.PathEscape(p.Version), ":", "%3a") + "_" + p.Arch + ".deb"
}

// Entry is one package of a Packages file.
type Entry struct {
	Package, Version, Arch, Filename, SHA256 string
	Index                                    string // the InRelease that vouches for it
}

// Index is what the signed indexes of a node vouch for: the entries of
// their Packages files by SHA-256.
type Index struct {
	bySum map[string][]Entry
}

// Len is the number of files the index vouches for.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.bySum)
}

// Lookup is the entries with that SHA-256 (lower-case hex).
func (ix *Index) Lookup(sum string) []Entry {
	if ix == nil {
		return nil
	}
	return ix.bySum[strings.ToLower(sum)]
}

// SignedIndex reads every signed index of this node: each InRelease whose
// signature gpgv verifies with the keys apt allows for its source, and
// whose dates are good; each Packages file whose SHA-256 that InRelease
// lists; and each package of those files by its SHA-256. Indexes that do
// not verify are left out, with why. Apt sources that cannot be read are
// an error that is ErrSources; apt's lists are then checked with the keys
// of a source without signed-by.
func (o Options) SignedIndex() (*Index, []error) {
	o = o.withDefaults()
	ix := &Index{bySum: map[string][]Entry{}}
	keys := &keyrings{o: o, sets: map[string]*keyset{}}
	defer keys.cleanup()
	repos, errs := o.repos()
	for _, r := range repos {
		if _, err := os.Stat(r.inRelease); err != nil {
			continue
		}
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.inRelease, r.err))
			continue
		}
		ks := keys.get(r.trust.signedBy)
		if ks.err != nil {
			errs = append(errs, fmt.Errorf("%s: not verified: %w", r.inRelease, ks.err))
			continue
		}
		signed, err := o.verify(r.inRelease, ks, r.trust)
		if err == nil {
			err = o.checkDates(r.inRelease, signed, r.trust)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for rel, sum := range releaseSHA256(signed) {
			if base := filepath.Base(rel); base != "Packages" && base != "Packages.gz" {
				continue
			}
			p := r.local(rel)
			b, err := os.ReadFile(p)
			if err != nil {
				continue // not downloaded: apt fetches only what it needs
			}
			if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
				errs = append(errs, fmt.Errorf("%s: SHA-256 differs from %s's: not used", p, r.inRelease))
				continue
			}
			ents, err := readPackages(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			for _, e := range ents {
				e.Index = r.inRelease
				ix.bySum[e.SHA256] = append(ix.bySum[e.SHA256], e)
			}
		}
	}
	return ix, errs
}

// Check says why the .deb at path may be installed as p: its SHA-256 is
// in the index under p's name, version and architecture, with a Filename
// of the same name (or named as apt names the file in its cache and with
// apt-get download: an epoch's ':' is %3a there, and the pool's name has
// no epoch), or the operator approved the hash (approved: lower-case
// SHA-256s). trusted names the signed index, or says "approved by the
// operator".
func (ix *Index) Check(path string, p Package, approved map[string]bool) (sum, trusted string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	var near []string
	for _, e := range ix.Lookup(sum) {
		if e.Package == p.Name && e.Version == p.Version && (e.Arch == p.Arch || e.Arch == "all") &&
			(filepath.Base(e.Filename) == filepath.Base(path) || filepath.Base(path) == CacheName(p)) {
			return sum, "signed index " + e.Index, nil
		}
		near = append(near, fmt.Sprintf("%s=%s (%s) in %s", e.Package, e.Version, e.Filename, e.Index))
	}
	if approved[sum] {
		return sum, "approved by the operator", nil
	}
	if len(near) > 0 {
		return sum, "", fmt.Errorf("SHA-256 %s is in a signed index, but as %s", sum, strings.Join(near, "; "))
	}
	return sum, "", fmt.Errorf("SHA-256 %s of %s is in no signed apt index of this node: approve it with `sentry parity apply --yes --approve %s` if you trust it", sum, filepath.Base(path), sum)
}

// LocalFiles are the files of p that the local (file:) repositories of
// apt's sources list in their Packages files. They are not checked here
// (Check does that). When the sources cannot be read there are none, and
// the error (ErrSources, naming the file and the line) says why.
func (o Options) LocalFiles(p Package) ([]string, error) {
	o = o.withDefaults()
	srcs, err := ReadSources(o.EtcDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSources, err)
	}
	var out []string
	for _, r := range localRepos(srcs) {
		for _, pf := range r.packagesFiles() {
			ents, err := readPackages(pf)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if e.Package == p.Name && e.Version == p.Version && e.Arch == p.Arch {
					out = append(out, filepath.Join(r.base, e.Filename))
				}
			}
		}
	}
	return out, nil
}

// readPackages reads a Packages file (plain or .gz).
func readPackages(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	var out []Entry
	var e Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	flush := func() {
		if e.Package != "" {
			out = append(out, e)
		}
		e = Entry{}
	}
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(l, " ") {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			e.Package = v
		case "Version":
			e.Version = v
		case "Architecture":
			e.Arch = v
		case "Filename":
			e.Filename = v
		case "SHA256":
			e.SHA256 = strings.ToLower(v)
		}
	}
	flush()
	return out, sc.Err()
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
