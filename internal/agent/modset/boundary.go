package modset

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
)

// BoundaryName, in the state folder, holds what the operator approved on
// this secondary beyond the built-in modules' paths. It is this disk set's
// own (never synced): the primary cannot widen it.
const BoundaryName = "boundary.toml"

// boundaryFile is the approved boundary as stored.
type boundaryFile struct {
	SchemaVersion int       `toml:"schema_version"`
	Approved      time.Time `toml:"approved"`
	Roots         []string  `toml:"roots"`
	Executables   []string  `toml:"executables"`
}

// setPending records what waits for approval; it says whether that changed.
func (s *Set) setPending(p modules.Boundary) (changed bool) {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	key := strings.Join(p.Roots, " ") + "\n" + strings.Join(p.Executables, " ")
	s.pending = p
	if key == s.pkey {
		return false
	}
	s.pkey = key
	return true
}

// Pending is what waits for approval on the secondary, roots then
// executables, for the status.
func (s *Set) Pending() []string {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	return append(append([]string{}, s.pending.Roots...), s.pending.Executables...)
}

// approvedBoundary is this secondary's boundary: the built-in modules'
// paths and the module files, widened by what the operator approved.
func (s *Set) approvedBoundary() (modules.Boundary, error) {
	b, err := modules.BuiltinBoundary(s.d.Modules)
	if err != nil {
		return b, err
	}
	b.Roots = append(b.Roots, s.d.ClusterDir)
	path := s.statePath(BoundaryName)
	var f boundaryFile
	if _, err := safetoml.DecodeFile(path, &f, safetoml.Small()); errors.Is(err, os.ErrNotExist) {
		return b.Union(modules.Boundary{}), nil
	} else if err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	return b.Union(modules.Boundary{Roots: f.Roots, Executables: f.Executables}), nil
}

// holdBack narrows the policy a secondary got from the primary's modules to
// its approved boundary: a root or an executable beyond it is left out (so
// nothing is written there) and reported as pending until `sentry modules
// approve`. sync.paths in this node's own configuration is its own choice
// and is not narrowed.
func (s *Set) holdBack(p *synchronizer.Policy, set *modules.Set) {
	if set == nil || len(s.d.Conf().Sync.Paths) > 0 {
		s.notePending(modules.Boundary{})
		return
	}
	ok, err := s.approvedBoundary()
	if err != nil {
		// Unreadable: nothing beyond the built-ins is let through.
		s.d.Log.Error("approved boundary unreadable: only the built-in modules' paths are applied", "err", err)
		ok, _ = modules.BuiltinBoundary(s.d.Modules)
		ok.Roots = append(ok.Roots, s.d.ClusterDir)
	}
	pending := ok.Beyond(set.Boundary())
	var roots []string
	for _, r := range p.Roots {
		if ok.Allows(r) {
			roots = append(roots, r)
		}
	}
	p.Roots = roots
	for e := range p.AllowExec {
		if slices.Contains(pending.Executables, e) {
			delete(p.AllowExec, e)
		}
	}
	s.notePending(pending)
}

// notePending records a change of what waits for approval, once.
func (s *Set) notePending(p modules.Boundary) {
	if !s.setPending(p) || p.Empty() {
		return
	}
	what := strings.Join(append(append([]string{}, p.Roots...), p.Executables...), ", ")
	s.d.Log.Warn("the primary's modules ask for more than this secondary approved: held back", "pending", what)
	s.event("boundary-pending", fmt.Sprintf("the primary's modules ask to write %s here: held back until `sentry modules approve` on this node", what),
		map[string]string{"roots": strings.Join(p.Roots, " "), "executables": strings.Join(p.Executables, " ")})
}

// ApproveResult is what `sentry modules approve` prints.
type ApproveResult struct {
	Approved modules.Boundary `json:"approved"` // what this approval added
	File     string           `json:"file"`
}

// Approve widens this secondary's boundary to what the selected modules
// ask for now; Deps.OnApproved then restarts the sync with it.
func (s *Set) Approve() (*ApproveResult, error) {
	if !s.d.Secondary() {
		return nil, errors.New("approve is done on the secondary: the primary's own modules decide what it tracks")
	}
	set := s.Modules()
	if set == nil {
		return nil, errors.New("the selected modules cannot be read here (see `sentry events --kind modules-invalid`)")
	}
	ok, err := s.approvedBoundary()
	if err != nil {
		return nil, err
	}
	add := ok.Beyond(set.Boundary())
	path := s.statePath(BoundaryName)
	res := &ApproveResult{Approved: add, File: path}
	if add.Empty() {
		return res, nil
	}
	var f boundaryFile
	if _, err := safetoml.DecodeFile(path, &f, safetoml.Small()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w := modules.Boundary{Roots: f.Roots, Executables: f.Executables}.Union(add)
	f = boundaryFile{SchemaVersion: 1, Approved: time.Now().UTC(), Roots: w.Roots, Executables: w.Executables}
	var buf bytes.Buffer
	buf.WriteString("# What the operator approved on this secondary beyond the built-in modules'\n# paths (sentry modules approve). This disk set's own: never synced.\n")
	if err := toml.NewEncoder(&buf).Encode(f); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	what := strings.Join(append(append([]string{}, add.Roots...), add.Executables...), ", ")
	s.event("modules-approved", "approved on this secondary: "+what, map[string]string{"roots": strings.Join(add.Roots, " "), "executables": strings.Join(add.Executables, " ")})
	if s.d.OnApproved != nil {
		go s.d.OnApproved()
	}
	return res, nil
}
