package agent

import (
	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/stamp"
)

// mods is the module set (modset), made on first use.
func (a *Agent) mods() *modset.Set {
	a.modsetOnce.Do(func() {
		st := stamp.NewStampReader(a.statePath(stamp.StampFile)) // read again when it changed
		a.modsSet = modset.New(modset.Deps{
			Conf: func() *config.Config { return a.conf() },
			Log:  a.log,
			Event: func(kind, node, msg string, fields map[string]string) {
				if a.store != nil {
					a.event(kind, node, msg, fields)
				}
			},
			// The stamp is read from its file, not a.stamp: callers may hold a.mu.
			Secondary:  func() bool { s, err := st.Read(); return err == nil && s.Role == stamp.RoleSecondary },
			Modules:    a.paths.modules,
			ClusterDir: a.paths.clusterDir,
			OnApproved: func() { a.cfgsync().RestartIfPolicyChanged() },
		})
	})
	return a.modsSet
}
