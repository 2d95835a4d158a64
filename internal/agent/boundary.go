package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
)

// boundaryName, in the state folder, holds what the operator approved on
// this secondary beyond the built-in modules' paths. It is this disk set's
// own (never synced): the primary cannot widen it.
const boundaryName = "boundary.toml"

// boundaryFile is the approved boundary as stored.
type boundaryFile struct {
	SchemaVersion int       `toml:"schema_version"`
	Approved      time.Time `toml:"approved"`
	Roots         []string  `toml:"roots"`
	Executables   []string  `toml:"executables"`
}

// boundaryState is what the secondary holds back of the primary's modules:
// the roots and executables they ask for beyond what was approved here. It
// owns its state behind its own lock (policyUnits is called with and
// without a.mu).
type boundaryState struct {
	mu      sync.Mutex
	pending modules.Boundary
	key     string // the pending set last reported
}

func (b *boundaryState) set(p modules.Boundary) (changed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := strings.Join(p.Roots, " ") + "\n" + strings.Join(p.Executables, " ")
	b.pending = p
	if key == b.key {
		return false
	}
	b.key = key
	return true
}

// list is what waits, roots then executables, for the status.
func (b *boundaryState) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(append([]string{}, b.pending.Roots...), b.pending.Executables...)
}

// approvedBoundary is this secondary's boundary: the built-in modules'
// paths and the module files, widened by what the operator approved.
func (a *Agent) approvedBoundary() (modules.Boundary, error) {
	b, err := modules.BuiltinBoundary(a.paths.modules)
	if err != nil {
		return b, err
	}
	b.Roots = append(b.Roots, a.paths.clusterDir)
	path := a.statePath(boundaryName)
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
func (a *Agent) holdBack(p *synchronizer.Policy, set *modules.Set) {
	if set == nil || len(a.conf().Sync.Paths) > 0 {
		a.notePending(modules.Boundary{})
		return
	}
	ok, err := a.approvedBoundary()
	if err != nil {
		// Unreadable: nothing beyond the built-ins is let through.
		a.log.Error("approved boundary unreadable: only the built-in modules' paths are applied", "err", err)
		ok, _ = modules.BuiltinBoundary(a.paths.modules)
		ok.Roots = append(ok.Roots, a.paths.clusterDir)
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
	a.notePending(pending)
}

// notePending records a change of what waits for approval, once.
func (a *Agent) notePending(p modules.Boundary) {
	if !a.boundary.set(p) || p.Empty() {
		return
	}
	what := strings.Join(append(append([]string{}, p.Roots...), p.Executables...), ", ")
	a.log.Warn("the primary's modules ask for more than this secondary approved: held back", "pending", what)
	if a.store == nil {
		return
	}
	a.event("boundary-pending", a.nodeName(), fmt.Sprintf("the primary's modules ask to write %s here: held back until `sentry modules approve` on this node", what),
		map[string]string{"roots": strings.Join(p.Roots, " "), "executables": strings.Join(p.Executables, " ")})
}

// ApproveResult is what `sentry modules approve` prints.
type ApproveResult struct {
	Approved modules.Boundary `json:"approved"` // what this approval added
	File     string           `json:"file"`
}

// ApproveModules widens this secondary's boundary to what the selected
// modules ask for now, and restarts the sync with it.
func (a *Agent) ApproveModules() (*ApproveResult, error) {
	if !a.isSecondary() {
		return nil, errors.New("approve is done on the secondary: the primary's own modules decide what it tracks")
	}
	set := a.moduleSet()
	if set == nil {
		return nil, errors.New("the selected modules cannot be read here (see `sentry events --kind modules-invalid`)")
	}
	ok, err := a.approvedBoundary()
	if err != nil {
		return nil, err
	}
	add := ok.Beyond(set.Boundary())
	path := a.statePath(boundaryName)
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
	a.event("modules-approved", a.nodeName(), "approved on this secondary: "+what, map[string]string{"roots": strings.Join(add.Roots, " "), "executables": strings.Join(add.Executables, " ")})
	go a.restartSyncIfPolicyChanged()
	return res, nil
}

// isSecondary says whether this disk set is the secondary.
func (a *Agent) isSecondary() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stamp != nil && a.stamp.Role == stamp.RoleSecondary
}
