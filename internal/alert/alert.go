// Package alert turns the results of the verifier's probes into alerts and
// sends them.
//
// A Tracker keeps one small state machine per node and probe, with
// hysteresis both ways: an alert fires after Policy.FailAfter failures in a
// row, is repeated every Policy.Reminder while the probe keeps failing, and
// is resolved after Policy.ResolveAfter successes in a row. A probe that
// flaps (fail, ok, fail, ok) never fires unless FailAfter is 1. The state
// survives a restart of the agent through Marshal and Unmarshal.
//
// A Dispatcher hands the notices to the senders without ever blocking the
// caller: every notice is written to the log at once, and the other senders
// (a Mailer) work through a bounded queue with a deadline per attempt and a
// few retries.
package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/verifier"
)

// Kind says what a Notice announces.
type Kind string

// The kinds of notice.
const (
	// Firing: the probe has just failed FailAfter times in a row.
	Firing Kind = "firing"
	// Reminder: the probe still fails, Reminder after the last notice.
	Reminder Kind = "reminder"
	// Resolved: the probe has worked ResolveAfter times in a row.
	Resolved Kind = "resolved"
)

// Policy sets the thresholds of a Tracker.
type Policy struct {
	// FailAfter failures in a row make the alert fire; below 1 means 2.
	FailAfter int
	// ResolveAfter successes in a row resolve it; below 1 means 2.
	ResolveAfter int
	// Reminder is how often a firing alert is repeated; 0 means never.
	Reminder time.Duration
}

// DefaultPolicy is the policy of an empty [alert] table.
func DefaultPolicy() Policy {
	return Policy{FailAfter: 2, ResolveAfter: 2, Reminder: 4 * time.Hour}
}

func (p Policy) normal() Policy {
	if p.FailAfter < 1 {
		p.FailAfter = 2
	}
	if p.ResolveAfter < 1 {
		p.ResolveAfter = 2
	}
	if p.Reminder < 0 {
		p.Reminder = 0
	}
	return p
}

// Notice is one alert message: an alert fired, is still firing, or was
// resolved.
type Notice struct {
	Kind  Kind   `json:"kind"`
	Node  string `json:"node"`
	Probe string `json:"probe"`
	// Phase is the phase of the probe that failed ("" when unknown); for a
	// resolved alert, the phase of the last failure.
	Phase string `json:"phase,omitempty"`
	// Message is the failure's message (without the phase name); for a
	// resolved alert, the last failure's message.
	Message string `json:"message"`
	// Since is the time of the first failure of this run of failures.
	Since time.Time `json:"since"`
	// At is the time of the observation that raised the notice.
	At time.Time `json:"at"`
	// Failures counts the failures since Since (for Resolved: in total).
	Failures int `json:"failures"`
}

// Text says in one line what failed and where, such as
//
//	node-s mail: phase "imap-fetch": canary not visible after 30s
//
// or, for a resolved alert, "node-s mail: works again".
func (n Notice) Text() string {
	where := n.Node + " " + n.Probe + ": "
	if n.Probe == ReadinessProbe { // "node-p readiness: NOT READY: peer.reachable: ..."
		if n.Kind == Resolved {
			return where + "READY again"
		}
		return where + n.Phase + ": " + n.Message
	}
	if n.Kind == Resolved {
		return where + "works again"
	}
	if n.Phase != "" {
		return fmt.Sprintf("%sphase %q: %s", where, n.Phase, n.Message)
	}
	return where + n.Message
}

// ReadinessProbe is the name under which the readiness verdict goes
// through a Tracker (its phase is the verdict: NOT READY or UNKNOWN).
const ReadinessProbe = "readiness"

// probeState is the state of one node and probe. Its fields are exported
// for JSON only.
type probeState struct {
	Node  string `json:"node"`
	Probe string `json:"probe"`
	// Fails counts failures since Since: in a row while not firing, in
	// total while firing (a success does not end an alert by itself).
	Fails int `json:"fails"`
	// OKs counts successes in a row while firing.
	OKs      int       `json:"oks,omitempty"`
	Firing   bool      `json:"firing"`
	Since    time.Time `json:"since"`
	Notified time.Time `json:"notified,omitzero"` // last firing or reminder notice
	Phase    string    `json:"phase,omitempty"`
	Message  string    `json:"message,omitempty"`
}

type probeKey struct{ node, probe string }

// Tracker holds the alert state of every node and probe. It is safe for
// concurrent use.
type Tracker struct {
	mu     sync.Mutex
	policy Policy
	probes map[probeKey]*probeState
}

// NewTracker returns a Tracker with no alerts.
func NewTracker(p Policy) *Tracker {
	return &Tracker{policy: p.normal(), probes: map[probeKey]*probeState{}}
}

// SetPolicy changes the thresholds (on a reload of the configuration). The
// state is kept and judged by the new thresholds from the next observation.
func (t *Tracker) SetPolicy(p Policy) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.policy = p.normal()
}

// Observe records one run of probe on node that ended at at, and returns
// the notices it raises (none, or one). msg is the failure's message.
func (t *Tracker) Observe(node, probe string, ok bool, msg string, at time.Time) []Notice {
	return t.ObservePhase(node, probe, ok, "", msg, at)
}

// ObservePhase is Observe with the name of the phase that failed.
func (t *Tracker) ObservePhase(node, probe string, ok bool, phase, msg string, at time.Time) []Notice {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := probeKey{node, probe}
	st := t.probes[k]
	if ok {
		if st == nil {
			return nil
		}
		if !st.Firing {
			// The failures were not in a row: start again.
			delete(t.probes, k)
			return nil
		}
		st.OKs++
		if st.OKs < t.policy.ResolveAfter {
			return nil
		}
		delete(t.probes, k)
		return []Notice{st.notice(Resolved, at)}
	}
	if st == nil {
		st = &probeState{Node: node, Probe: probe, Since: at}
		t.probes[k] = st
	}
	st.Fails++
	st.OKs = 0
	st.Phase, st.Message = phase, msg
	switch {
	case !st.Firing && st.Fails >= t.policy.FailAfter:
		st.Firing = true
		st.Notified = at
		return []Notice{st.notice(Firing, at)}
	case st.Firing && t.policy.Reminder > 0 && !at.Before(st.Notified.Add(t.policy.Reminder)):
		st.Notified = at
		return []Notice{st.notice(Reminder, at)}
	}
	return nil
}

// ObserveResult is Observe for a verifier result of node: the failing
// phase is the first phase with an error, and the message is that phase's
// error (the result's message when no phase failed).
func (t *Tracker) ObserveResult(node string, r verifier.Result) []Notice {
	phase, msg := FailedPhase(r)
	return t.ObservePhase(node, r.Name, r.OK, phase, msg, r.Started.Add(r.Duration))
}

// FailedPhase returns the name and the error of the first phase of r that
// failed, or "" and r.Message when none did.
func FailedPhase(r verifier.Result) (phase, msg string) {
	if r.OK {
		return "", ""
	}
	for _, p := range r.Phases {
		if p.Error != "" {
			return p.Name, p.Error
		}
	}
	return "", r.Message
}

func (st *probeState) notice(k Kind, at time.Time) Notice {
	return Notice{
		Kind: k, Node: st.Node, Probe: st.Probe, Phase: st.Phase, Message: st.Message,
		Since: st.Since, At: at, Failures: st.Fails,
	}
}

// Firing returns the alerts firing now, as notices of kind Firing, sorted
// by node and probe.
func (t *Tracker) Firing() []Notice {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Notice
	for _, st := range t.sorted() {
		if st.Firing {
			out = append(out, st.notice(Firing, st.Notified))
		}
	}
	return out
}

func (t *Tracker) sorted() []*probeState {
	out := make([]*probeState, 0, len(t.probes))
	for _, st := range t.probes {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Probe < out[j].Probe
	})
	return out
}

// stateVersion is the version of the Marshal format.
const stateVersion = 1

type savedState struct {
	Version int           `json:"version"`
	Probes  []*probeState `json:"probes"`
}

// ErrState is wrapped by the errors of Unmarshal.
var ErrState = errors.New("alert: bad saved state")

// Marshal returns the state of every node and probe, for Unmarshal after a
// restart. The policy is not part of it.
func (t *Tracker) Marshal() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return json.Marshal(savedState{Version: stateVersion, Probes: t.sorted()})
}

// Unmarshal replaces the state with one from Marshal. Empty input is an
// empty state (nothing was saved yet). On an error the state is unchanged.
func (t *Tracker) Unmarshal(b []byte) error {
	probes := map[probeKey]*probeState{}
	if len(strings.TrimSpace(string(b))) > 0 {
		var s savedState
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: %v", ErrState, err)
		}
		if s.Version != stateVersion {
			return fmt.Errorf("%w: version %d, this sentry knows version %d", ErrState, s.Version, stateVersion)
		}
		for i, st := range s.Probes {
			if st == nil || st.Node == "" || st.Probe == "" || st.Fails < 0 || st.OKs < 0 {
				return fmt.Errorf("%w: entry %d is incomplete", ErrState, i+1)
			}
			probes[probeKey{st.Node, st.Probe}] = st
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probes = probes
	return nil
}
