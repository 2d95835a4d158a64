package agent

import (
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// moduleSet loads the selected modules. A bad manifest or selection is
// logged (once per distinct message) and nil is returned: the callers then
// use the compiled-in defaults, so a broken module never stops a node.
func (a *Agent) moduleSet() *modules.Set {
	opts := a.paths.modules
	// The stamp is read from its file, not a.stamp: callers may hold a.mu.
	if st, err := stamp.ReadStamp(a.statePath(stamp.StampFile)); err == nil && st.Role == stamp.RoleSecondary {
		opts.Follower = true
	}
	set, warns, err := modules.Load(opts)
	msgs := make([]string, 0, len(warns)+1)
	for _, w := range warns {
		msgs = append(msgs, w.String())
	}
	if err != nil {
		msgs = append(msgs, err.Error())
	}
	key := strings.Join(msgs, "\n")
	// Its own lock: callers may hold a.mu.
	a.modMu.Lock()
	defer a.modMu.Unlock()
	if key != a.moduleMsgs {
		a.moduleMsgs = key
		for _, w := range warns {
			a.log.Warn("module manifest", "warning", w.String())
		}
		if err != nil {
			a.log.Error("modules: using the compiled-in defaults", "err", err)
			a.event("modules-invalid", a.nodeName(), "modules refused, compiled-in defaults in use: "+err.Error(), nil)
		}
	}
	if err != nil {
		return nil
	}
	return set
}

// probeSpecs are this node's probes: the selected modules', else the
// compiled-in set.
func (a *Agent) probeSpecs(pw string, timeout time.Duration) []verifier.Spec {
	if set := a.moduleSet(); set != nil {
		return set.Probes(modules.ProbeEnv{Password: pw, Timeout: timeout})
	}
	return verifier.DefaultProbes(pw, timeout)
}

// modulePolicy fills a sync policy's roots, executables, node keys and
// reload order from the selected modules (sync.paths, when set, wins over
// the modules' tracked paths).
func (a *Agent) modulePolicy(p *synchronizer.Policy) []synchronizer.RootUnit {
	set := a.moduleSet()
	if set == nil {
		return synchronizer.DefaultUnits
	}
	if len(a.conf().Sync.Paths) == 0 {
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
	// The stamp is read from its file, not a.stamp: callers may hold a.mu.
	if st, err := stamp.ReadStamp(a.statePath(stamp.StampFile)); err == nil && st.Role == stamp.RoleSecondary {
		a.holdBack(p, set)
	}
	return units
}
