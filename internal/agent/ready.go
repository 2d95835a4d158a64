package agent

import (
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/sentryha/sentry/internal/agent/ready"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
)

// The readiness verdict (package ready) and what the wiring gives it.

// WithReadyOptions points the readiness component's reads at o's (tests).
func WithReadyOptions(o ready.Options) Option { return func(p *paths) { p.ready = o } }

func newReady(a *Agent) *ready.Ready {
	return ready.New(ready.Deps{
		Gather: func() *readiness.Input { return gatherReadiness(a) },
		Event:  a.event,
		Log:    a.log.With("component", "ready"),
		Node:   a.nodeName,
		PeerNICs: func() []hwid.NIC {
			if p := a.lnk().Peer(); p != nil {
				return p.HardwareNICs
			}
			return nil
		},
		Modules: func() map[string]string { return a.mods().InUse() },
		Save:    func(b []byte) error { return a.store.PutVerdict(b) }, // the store opens before the component runs
		Load:    func() ([]byte, error) { return a.store.Verdict() },
		Alert: func(ok bool, phase, msg string, at time.Time) {
			a.sched.Observe(a.nodeName(), ready.AlertName, ok, phase, msg, at)
		}, // after a round: set
	}, a.paths.ready)
}

// gatherReadiness is both nodes as this one knows them: its own status, the
// peer's last (from the link, else the store), the link's contact, the
// parity report (drift, compat) and the probes the modules ask for.
func gatherReadiness(a *Agent) *readiness.Input {
	a.mu.Lock()
	if a.stamp == nil || a.sched == nil {
		a.mu.Unlock()
		return nil
	}
	self := a.selfStatusLocked()
	var peerName string
	if a.cluster != nil {
		peerName = a.cluster.PeerName
	}
	a.mu.Unlock()
	v := a.conf().Verifier
	in := &readiness.Input{Now: time.Now().UTC(), Self: self.Name, Freshness: ready.Freshness(v.Interval.Duration, v.Jitter.Duration, v.Timeout.Duration)}
	own := ready.NodeOf(&self, self.Time)
	own.Expected = append(own.Expected, a.mods().ProbeNames()...)
	st := a.lnk().State()
	in.PeerReachable, in.PeerContact, in.PeerError = st.Reachable, st.LastContact, st.LastError
	p := st.Peer
	if p != nil && st.Reachable && !st.ClockMeasured.IsZero() {
		off := st.ClockOffset
		in.ClockOffset = &off
	}
	if p == nil && peerName != "" && a.store != nil { // not heard from since start: the store's
		if rec, ok, err := a.store.Peer(peerName); err == nil && ok {
			var ns peer.NodeStatus
			if json.Unmarshal(rec.Status, &ns) == nil {
				p = &ns
			}
			in.PeerContact = rec.LastContact
		}
	}
	if p != nil && p.Verdict != nil {
		in.PeerVerdict = &readiness.PeerVerdict{Node: p.Name, Verdict: readiness.Verdict(p.Verdict.Verdict), At: p.Verdict.At, Heard: in.PeerContact, Reasons: p.Verdict.Reasons}
	}
	other := ready.NodeOf(p, in.PeerContact)
	in.Primary, in.Secondary = own, other
	if self.Role == "secondary" || (self.Role != "primary" && p != nil && p.Role == "primary") {
		in.Primary, in.Secondary = other, own
	}
	if rep := a.parity.Current(); rep != nil {
		rep.ReadinessFacts(in, own, other)
		as, err := readiness.LoadAllowances(filepath.Join(a.paths.clusterDir, readiness.AllowFile))
		if err != nil && in.Packages.Err == "" { // not hiding "an inventory is missing"
			in.Packages.Err = err.Error()
		}
		in.Packages.Allow(as)
	}
	return in
}
