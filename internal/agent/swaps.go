package agent

import (
	"time"

	"github.com/sentryha/sentry/internal/agent/swaps"
	"github.com/sentryha/sentry/internal/peer"
)

// newSwaps makes the failover component; Run calls it once the store and
// the schedule are there and before the link starts, so that the store's
// last contact with the peer is the one before this boot.
func newSwaps(a *Agent) *swaps.Swaps {
	var last time.Time
	a.mu.Lock()
	cl := a.cluster
	a.mu.Unlock()
	if cl != nil {
		if rec, ok, err := a.store.Peer(cl.PeerName); err == nil && ok {
			last = rec.LastContact
		}
	}
	return swaps.New(swaps.Deps{Log: a.log.With("component", "swaps"), Event: a.event, Store: a.store,
		Boot: a.machines.Boot, LastContact: last, Results: a.sched.Results, Verdict: a.verdict.Evaluate,
		Self: func() peer.NodeStatus { a.mu.Lock(); defer a.mu.Unlock(); return a.selfStatusLocked() },
		Peer: func() (*peer.NodeStatus, bool, time.Time) {
			st := a.lnk().State()
			return st.Peer, st.Reachable, st.LastContact
		},
		Expected: func() (names []string) {
			for _, s := range a.mods().ProbeSpecs("", 0) {
				names = append(names, s.Name)
			}
			return names
		}}, a.paths.swaps...)
}

// WithSwapsOptions adjusts the failover component (tests).
func WithSwapsOptions(o ...swaps.Option) Option { return func(p *paths) { p.swaps = o } }
