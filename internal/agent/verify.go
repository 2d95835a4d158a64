package agent

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/verifier"
)

// newSchedule makes the verifier schedule (the store is open).
func newSchedule(a *Agent) (*schedule.Schedule, error) {
	return schedule.New(schedule.Deps{
		Conf:     a.conf,
		Store:    a.store,
		Log:      a.log,
		Event:    a.event,
		Node:     a.nodeName,
		PeerName: func() string { return peerName(a) },
		SafeMode: func() string {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.safeModeLocked()
		},
		Password: func() (string, bool) { return canaryPassword(a) },
		Specs:    a.mods().ProbeSpecs,
		ProbeUnits: func() map[string][]string {
			if set := a.mods().Modules(); set != nil {
				return set.ProbeUnits()
			}
			return nil
		},
		CanaryPages: func() []verifier.Page {
			if set := a.mods().Modules(); set != nil {
				return set.CanaryPages()
			}
			return nil
		},
		ClusterDir: a.paths.clusterDir,
		Reloads:    reloadsOf{a},
		Peer:       verifyPeer{a},
		Rounded:    a.verdict.Rounded,
		Quiet: func() string { // a planned swap under way, here or announced by the peer
			if st := a.lnk().State(); st.Peer != nil {
				return a.swaps.Quiet(st.Peer.Name, st.Peer.Maintenance)
			}
			return a.swaps.Quiet("", nil)
		},
	})
}

// canaryPassword is derived from the cluster key (the same on both nodes).
func canaryPassword(a *Agent) (string, bool) {
	a.mu.Lock()
	sec := a.secrets
	a.mu.Unlock()
	if sec == nil {
		// A node paired before the agent knew the key: read it again.
		b, err := os.ReadFile(filepath.Join(a.statePath("pki"), pki.ClusterKeyFile))
		if err != nil {
			return "", false
		}
		pw, err := schedule.CanaryPassword(string(b))
		return pw, err == nil
	}
	return schedule.CanaryPasswordOf(sec), true
}

// peerName is the paired peer's name ("" while unpaired).
func peerName(a *Agent) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cluster == nil {
		return ""
	}
	return a.cluster.PeerName
}

// reloadsOf is the sync's reload log as the schedule asks it.
type reloadsOf struct{ a *Agent }

func (r reloadsOf) Disturbed(start, end time.Time, deps []string) []string {
	out := r.a.cfgsync().Reloads().Disturbed(start, end, deps)
	for i, u := range out {
		if u == cfgsync.SyncUnderWay {
			out[i] = schedule.SyncUnderWay
		}
	}
	return out
}

func (r reloadsOf) WaitIdle(ctx context.Context, bound time.Duration) error {
	return r.a.cfgsync().Reloads().WaitIdle(ctx, bound)
}

// verifyPeer asks the peer's agent to run its probes.
type verifyPeer struct{ a *Agent }

func (p verifyPeer) VerifyRun(ctx context.Context, req peer.VerifyRequest) (*peer.VerifyResults, error) {
	return p.a.lnk().Client().Verify(ctx, req)
}
