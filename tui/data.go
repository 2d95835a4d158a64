package tui

import (
	"sort"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agent/reports"
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
	// latest is the newest result of each probe, by node, kept whole;
	// series the results of the last 24 hours, by node and probe, newest
	// first, as the sparkline reads them (a result's start, latency and
	// outcome: 17 bytes, where a StoredResult held is ~800 and a day of
	// 15 probes on 2 nodes is 86,400 of them).
	latest  map[string][]store.StoredResult
	series  map[string]series
	sparks  map[string]sparkCache
	lastRun *schedule.Run
	log     []cfgsync.LogEntry
	diffs   map[string]*cfgsync.DiffResult
	drift   []synchronizer.DriftItem
	parity  *parity.Report
	fstatus *swaps.Status
	fhist   []failover.Record
	plan    *failover.Plan
	events  []store.Event
	reports *reports.List
	texts   map[string]*reports.Text // the reports opened, by reportRef
	modules *modset.List
	// errs is why the newest fetch of a key failed (the agent answered).
	errs map[string]string
	// at is when each key was fetched last.
	at map[string]time.Time
}

func newData() *data {
	return &data{
		latest: map[string][]store.StoredResult{}, sparks: map[string]sparkCache{}, series: map[string]series{},
		diffs: map[string]*cfgsync.DiffResult{}, texts: map[string]*reports.Text{}, errs: map[string]string{}, at: map[string]time.Time{},
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
	old := d.series[key]
	cut := since.UnixNano()
	n := len(old.start) + len(rs)
	seen := make(map[int64]bool, n)
	all := make([]point, 0, n)
	add := func(p point) {
		if seen[p.start] || p.start < cut {
			return
		}
		seen[p.start] = true
		all = append(all, p)
	}
	for i := range rs {
		add(point{rs[i].Start.UnixNano(), latency(&rs[i]), rs[i].OK})
	}
	for i := range old.start {
		add(point{old.start[i], old.lat[i], old.ok[i]})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].start > all[j].start })
	d.series[key] = newSeries(all)
}

// series is a history as the sparkline reads it: each result's start
// (Unix nanoseconds), latency and outcome, newest first.
type series struct {
	start, lat []int64
	ok         []bool
}

// point is one result in a series.
type point struct {
	start, lat int64
	ok         bool
}

func newSeries(ps []point) series {
	s := series{start: make([]int64, len(ps)), lat: make([]int64, len(ps)), ok: make([]bool, len(ps))}
	for i, p := range ps {
		s.start[i], s.lat[i], s.ok[i] = p.start, p.lat, p.ok
	}
	return s
}

// setHistory sets the history of key to rs (newest first).
func (d *data) setHistory(key string, rs []store.StoredResult) {
	ps := make([]point, len(rs))
	for i := range rs {
		ps[i] = point{rs[i].Start.UnixNano(), latency(&rs[i]), rs[i].OK}
	}
	d.series[key] = newSeries(ps)
}

// noteLatest puts r in the latest results of its node, and in its history.
func (d *data) noteLatest(rs []store.StoredResult, node string, since time.Time) {
	d.latest[node] = rs
	for _, r := range rs {
		k := histKey(node, r.Probe)
		if _, ok := d.series[k]; ok {
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
