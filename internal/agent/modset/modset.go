// Package modset is the agent's view of the selected modules: loaded once
// and cached, loaded again on Reload (SIGHUP) or when the sync reports a
// commit or an apply that touched the module files; the probe specs and the
// sync policy they give; and the secondary's approved boundary (what it
// lets the primary's modules write here).
package modset

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// Deps is what the module set needs from the agent.
type Deps struct {
	Conf func() *config.Config
	Log  *slog.Logger
	// Event records an event (nil: none, as before the store is open).
	Event func(kind, node, msg string, fields map[string]string)
	// Secondary says whether this disk set is the secondary, by its stamp
	// file (it is called with the agent's lock held: it must not take it).
	Secondary func() bool
	// Modules are the module folders (modules.DefaultOptions on a node).
	Modules modules.Options
	// ClusterDir is the cluster's own tracked folder.
	ClusterDir string
	// OnApproved runs, in its own goroutine, after an approval widened the
	// boundary: the wiring restarts the sync if its policy changed.
	OnApproved func()
}

// Set is the selected modules as this agent knows them.
type Set struct {
	d Deps

	mu       sync.Mutex
	loaded   bool
	gen      uint64 // bumped by Reload: a load begun before it is not kept
	follower bool   // the role the cached set was loaded for
	print    string // the files' fingerprint when the cached set was read
	set      *modules.Set
	msgs     string // the last warnings and error, logged once
	applying int    // syncs under way that may write the module files

	cmu sync.Mutex // one change of the selection at a time (Use, Rollback)

	bmu     sync.Mutex
	pending modules.Boundary // secondary: what waits for approval
	pkey    string           // the pending set last reported
}

// New makes the module set; nothing is read before the first use.
func New(d Deps) *Set {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Secondary == nil {
		d.Secondary = func() bool { return false }
	}
	return &Set{d: d}
}

func (s *Set) node() string { return s.d.Conf().Node.Name }

func (s *Set) event(kind, msg string, fields map[string]string) {
	if s.d.Event != nil {
		s.d.Event(kind, s.node(), msg, fields)
	}
}

// InUse are the modules in use, name: version (empty: none selected).
func (s *Set) InUse() map[string]string {
	m := map[string]string{}
	if set := s.Modules(); set != nil {
		for _, x := range set.Modules() {
			m[x.Name] = x.Version
		}
	}
	return m
}

// Modules is the selected modules. A bad manifest or selection is logged
// (once per distinct message) and nil is returned: the callers then use the
// compiled-in defaults, so a broken module never stops a node. The set is
// read from disk on first use, after Reload, and when the role changed (a
// secondary loads the primary's manifests as a follower).
func (s *Set) Modules() *modules.Set {
	follower := s.d.Secondary()
	print := fingerprint(s.d.Modules)
	s.mu.Lock()
	if s.loaded && s.follower == follower && s.applying == 0 && s.print == print {
		set := s.set
		s.mu.Unlock()
		return set
	}
	gen, keep := s.gen, s.applying == 0
	s.mu.Unlock()
	// Read without the lock: it is disk I/O.
	opts := s.d.Modules
	opts.Follower = follower
	set, warns, err := modules.Load(opts)
	msgs := make([]string, 0, len(warns)+1)
	for _, w := range warns {
		msgs = append(msgs, w.String())
	}
	if err != nil && !keep {
		// A sync is writing the module files: they may be half written
		// (the selection naming a version whose manifest comes next in
		// the same apply). The last set read whole stands; the apply's
		// end reads them again, and an error that stays is reported then.
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.set
	}
	if err != nil {
		msgs = append(msgs, err.Error())
		set = nil
	}
	key := strings.Join(msgs, "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != s.msgs {
		s.msgs = key
		for _, w := range warns {
			s.d.Log.Warn("module manifest", "warning", w.String())
		}
		if err != nil {
			s.d.Log.Error("modules: using the compiled-in defaults", "err", err)
			s.event("modules-invalid", "modules refused, compiled-in defaults in use: "+err.Error(), nil)
		}
	}
	if gen == s.gen && keep {
		s.loaded, s.follower, s.set, s.print = true, follower, set, print
	}
	return set
}

// fingerprint sums up the module files' names, sizes and times, so that a
// change made outside the sync (`sentry modules install/select/rollback`
// on a node not syncing, or an edit) is read at the next use: a few dozen
// stats, no reads.
func fingerprint(o modules.Options) string {
	var b strings.Builder
	stat := func(p string) {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	stat(o.SelectionFile)
	for _, pat := range []string{filepath.Join(o.Dir, "*.toml"), filepath.Join(o.InstallDir, "*", "*.toml")} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			stat(f)
		}
	}
	return b.String()
}

// Applying marks a sync that may write the module files as under way:
// until end is called, each use reads them again (so that nothing reads
// the new files with the old set, or the other way round); files that do
// not load then are taken as half written, not reported. end gets the
// paths the sync wrote or removed, as on this disk: when one is a module
// file the set is read again (nil paths: read again anyway, as after a
// rollback).
func (s *Set) Applying() (end func(paths []string)) {
	s.mu.Lock()
	s.applying++
	s.mu.Unlock()
	return func(paths []string) {
		if paths == nil {
			s.Reload()
		} else {
			s.Touched(paths)
		}
		s.mu.Lock()
		s.applying--
		s.mu.Unlock()
	}
}

// Reload forgets the cached set: the next use reads the module files again.
func (s *Set) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = false
	s.gen++
}

// Touched reloads the set when paths (written, removed or committed by the
// sync) include a module file: the selection file, a manifest of the
// operators' folder or an installed version. It says whether it did.
func (s *Set) Touched(paths []string) bool {
	o := s.d.Modules
	for _, p := range paths {
		for _, m := range []string{o.SelectionFile, o.Dir, o.InstallDir} {
			if m != "" && (p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/")) {
				s.Reload()
				return true
			}
		}
	}
	return false
}

// ProbeSpecs are this node's probes: the selected modules', else the
// compiled-in set.
func (s *Set) ProbeSpecs(pw string, timeout time.Duration) []verifier.Spec {
	if set := s.Modules(); set != nil {
		return set.Probes(modules.ProbeEnv{Password: pw, Timeout: timeout})
	}
	return verifier.DefaultProbes(pw, timeout)
}

// ProbeNames are the names of ProbeSpecs, without their parameters (the
// readiness check of the verifier's coverage asks for them each time it
// judges).
func (s *Set) ProbeNames() []string {
	if set := s.Modules(); set != nil {
		return set.ProbeNames()
	}
	var out []string
	for _, sp := range verifier.DefaultProbes("", 0) {
		out = append(out, sp.Name)
	}
	return out
}

// PolicyUnits is the sync policy and the reload order: sync.paths if set,
// else the selected modules' tracked paths (else the compiled-in roots),
// plus the cluster's own folder. On the secondary, what the modules ask
// beyond the approved boundary is held back.
func (s *Set) PolicyUnits() (*synchronizer.Policy, []synchronizer.RootUnit) {
	conf := s.d.Conf()
	p := &synchronizer.Policy{Roots: conf.Sync.Paths, Exclude: conf.Sync.Exclude}
	units := s.modulePolicy(p)
	if len(p.Roots) == 0 {
		p.Roots = synchronizer.DefaultRoots
	}
	// The machine profiles are the cluster's, on every disk set.
	p.Roots = append(append([]string{}, p.Roots...), s.d.ClusterDir)
	return p, units
}

// modulePolicy fills a sync policy's roots, executables, node keys and
// reload order from the selected modules (sync.paths, when set, wins over
// the modules' tracked paths).
func (s *Set) modulePolicy(p *synchronizer.Policy) []synchronizer.RootUnit {
	set := s.Modules()
	if set == nil {
		return synchronizer.DefaultUnits
	}
	if len(s.d.Conf().Sync.Paths) == 0 {
		p.Roots = append(set.TrackedPaths(), p.Roots...)
	}
	p.AllowExec = map[string]bool{}
	for _, e := range set.Executables() {
		p.AllowExec[e] = true
	}
	p.NodeKeys = set.NodeKeys()
	var units []synchronizer.RootUnit
	for _, t := range set.Triggers() {
		units = append(units, synchronizer.RootUnit(t))
	}
	if s.d.Secondary() {
		s.holdBack(p, set)
	}
	return units
}

func (s *Set) statePath(name string) string {
	return filepath.Join(s.d.Conf().Node.StateDir, name)
}
