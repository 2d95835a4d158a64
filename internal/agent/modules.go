package agent

import (
	"time"

	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// mods is the module set (modset), made on first use.
func (a *Agent) mods() *modset.Set {
	a.modsetOnce.Do(func() {
		a.modsSet = modset.New(modset.Deps{
			Conf: func() *config.Config { return a.conf() },
			Log:  a.log,
			Event: func(kind, node, msg string, fields map[string]string) {
				if a.store != nil {
					a.event(kind, node, msg, fields)
				}
			},
			// The stamp is read from its file, not a.stamp: callers may hold a.mu.
			Secondary: func() bool {
				st, err := stamp.ReadStamp(a.statePath(stamp.StampFile))
				return err == nil && st.Role == stamp.RoleSecondary
			},
			Modules:    a.paths.modules,
			ClusterDir: a.paths.clusterDir,
			OnApproved: a.restartSyncIfPolicyChanged,
		})
	})
	return a.modsSet
}

// moduleSet is the selected modules (nil: the compiled-in defaults).
func (a *Agent) moduleSet() *modules.Set { return a.mods().Modules() }

// probeSpecs are this node's probes: the selected modules', else the
// compiled-in set.
func (a *Agent) probeSpecs(pw string, timeout time.Duration) []verifier.Spec {
	return a.mods().ProbeSpecs(pw, timeout)
}

// policyUnits is the sync policy and the reload order (modset.PolicyUnits).
func (a *Agent) policyUnits() (*synchronizer.Policy, []synchronizer.RootUnit) {
	return a.mods().PolicyUnits()
}

// ApproveModules widens this secondary's boundary to what the selected
// modules ask for now, and restarts the sync with it.
func (a *Agent) ApproveModules() (*modset.ApproveResult, error) { return a.mods().Approve() }
