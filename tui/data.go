package tui

import (
	"sort"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/agent/swaps"
	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
)

// maxEvents is how many events the Events screen keeps.
const maxEvents = 500

// data is what the UI has fetched: kept when the agent goes away.
type data struct {
	state *api.State
	ready *readiness.Result
	// latest is the newest result of each probe, by node; history the
	// results of the last 24 hours, by node and probe, newest first.
	latest  map[string][]store.StoredResult
	history map[string][]store.StoredResult
	sparks  map[string]sparkCache
	series  map[string]series // history, as the sparkline reads it
	lastRun *schedule.Run
	log     []cfgsync.LogEntry
	diffs   map[string]*cfgsync.DiffResult
	drift   []synchronizer.DriftItem
	parity  *parity.Report
	fstatus *swaps.Status
	fhist   []failover.Record
	plan    *failover.Plan
	events  []store.Event
	// errs is why the newest fetch of a key failed (the agent answered).
	errs map[string]string
	// at is when each key was fetched last.
	at map[string]time.Time
}

func newData() *data {
	return &data{
		latest: map[string][]store.StoredResult{}, history: map[string][]store.StoredResult{}, sparks: map[string]sparkCache{}, series: map[string]series{},
		diffs: map[string]*cfgsync.DiffResult{}, errs: map[string]string{}, at: map[string]time.Time{},
	}
}

// self is this node (the one whose agent the UI talks to), nil before
// the state is known.
func (d *data) self() *api.Node {
	if d.state == nil {
		return nil
	}
	for i := range d.state.Nodes {
		if d.state.Nodes[i].Self {
			return &d.state.Nodes[i]
		}
	}
	return nil
}

// nodes are the node names, the primary first.
func (d *data) nodes() []string {
	var out []string
	if d.state != nil {
		for _, n := range d.state.Nodes {
			out = append(out, n.Name)
		}
	}
	for n := range d.latest {
		if !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// probes are the names of every probe with a result on any node, sorted.
func (d *data) probes() []string {
	seen := map[string]bool{}
	var out []string
	for _, rs := range d.latest {
		for _, r := range rs {
			if !seen[r.Probe] {
				seen[r.Probe] = true
				out = append(out, r.Probe)
			}
		}
	}
	sort.Strings(out)
	return out
}

// last is node's newest result of probe.
func (d *data) last(node, probe string) *store.StoredResult {
	for i, r := range d.latest[node] {
		if r.Probe == probe {
			return &d.latest[node][i]
		}
	}
	return nil
}

// mergeHistory adds rs (newest first) to the history of node/probe, drops
// what is older than since, and keeps the newest first.
func (d *data) mergeHistory(key string, rs []store.StoredResult, since time.Time) {
	old := d.history[key]
	seen := make(map[int64]bool, len(old)+len(rs))
	all := make([]store.StoredResult, 0, len(old)+len(rs))
	for _, list := range [][]store.StoredResult{rs, old} {
		for _, r := range list {
			k := r.Start.UnixNano()
			if seen[k] || r.Start.Before(since) {
				continue
			}
			seen[k] = true
			all = append(all, r)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start.After(all[j].Start) })
	d.setHistory(key, all)
}

// series is a history as the sparkline reads it: each result's start
// (Unix nanoseconds), latency and outcome, newest first.
type series struct {
	start, lat []int64
	ok         []bool
}

// setHistory sets the history of key (newest first), and its series.
func (d *data) setHistory(key string, rs []store.StoredResult) {
	s := series{start: make([]int64, len(rs)), lat: make([]int64, len(rs)), ok: make([]bool, len(rs))}
	for i := range rs {
		s.start[i], s.lat[i], s.ok[i] = rs[i].Start.UnixNano(), latency(&rs[i]), rs[i].OK
	}
	d.history[key], d.series[key] = rs, s
}

// noteLatest puts r in the latest results of its node, and in its history.
func (d *data) noteLatest(rs []store.StoredResult, node string, since time.Time) {
	d.latest[node] = rs
	for _, r := range rs {
		k := histKey(node, r.Probe)
		if _, ok := d.history[k]; ok {
			d.mergeHistory(k, []store.StoredResult{r}, since)
		}
	}
}

// addEvents appends evs (in sequence order), without the ones already
// held, keeping the newest maxEvents.
func (d *data) addEvents(evs ...store.Event) {
	var last uint64
	if n := len(d.events); n > 0 {
		last = d.events[n-1].Seq
	}
	for _, e := range evs {
		if e.Seq > last {
			d.events = append(d.events, e)
			last = e.Seq
		}
	}
	if n := len(d.events); n > maxEvents {
		d.events = append([]store.Event(nil), d.events[n-maxEvents:]...)
	}
}

func histKey(node, probe string) string { return node + "/" + probe }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
