// Package metrics is the agent's opt-in Prometheus endpoint
// ([metrics] listen in sentry.toml; docs/monitoring.md): what an IT
// provider's own Prometheus scrapes to watch many office pairs, and alert
// on them through its own Alertmanager (docs/prometheus/sentry-rules.yml).
//
// The package knows nothing of the agent: the agent hands NewCollector a
// function that returns a Snapshot of what it knows, and the collector
// turns each scrape's Snapshot into metrics. Nothing is kept between two
// scrapes, so a metric is never older than the agent's own state.
//
// Conventions (https://prometheus.io/docs/practices/naming/):
//
//   - every name starts with sentry_, a time is a Unix time in a
//     *_timestamp_seconds gauge, a duration is in *_seconds, the one
//     counter ends in _total;
//   - a state is a label of a 0/1 gauge, one series per possible state,
//     exactly one of them 1 (the "state set" of OpenMetrics, as
//     kube-state-metrics does it), rather than an enum coded as a number:
//     an alert or a dashboard names the state (state="fail") instead of a
//     magic number, sum by (state) counts a fleet, and the series of every
//     state exist even at 0, so a state that ends is seen to end;
//   - label values are lower-case words ("not_ready", "in_step"), the
//     agent's words mapped; a value the collector does not know counts as
//     "unknown" rather than growing a new series;
//   - a timestamp that is not known is left out, except
//     sentry_last_report_timestamp_seconds, which is 0 before the first
//     report (of an agent that makes reports) so that "never" ages like
//     "long ago";
//   - label sets are bounded: each kind of series has a ceiling
//     (maxProbesPerNode, ...), label values are cut to maxLabelLen bytes
//     of valid UTF-8, and what a ceiling leaves out is counted in
//     sentry_exporter_dropped_series.
package metrics

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what the agent knows at one moment. The collector calls the
// agent's function once per scrape; it must return quickly (it runs under
// the scrape's timeout) and must not hand out slices it goes on writing.
type Snapshot struct {
	// Node and Role are this node: its name, and "primary", "secondary"
	// or "" (not initialized).
	Node string
	Role string

	// Verdict is this node's readiness verdict: "READY", "NOT READY",
	// "UNKNOWN", or "" when not judged yet; VerdictAt when it was judged.
	Verdict   string
	VerdictAt time.Time
	// Checks are the verdict's findings, one per readiness check.
	Checks []Check

	// Probes are the newest result of each probe this node holds, its
	// own and the peer's (both nodes).
	Probes []Probe

	// ConfigHeadAt is when the primary committed its configuration head
	// (zero: unknown).
	ConfigHeadAt time.Time
	// ConfigApplyFailures counts the applies of the primary's
	// configuration that failed on this node since the agent started
	// (cumulative: a counter, never 1-for-the-newest; 0 on the primary).
	ConfigApplyFailures int
	// ConfigFailed is true while the newest commit could not be applied
	// on the secondary (as this node knows it).
	ConfigFailed bool

	// Drift is the package drift between the two nodes: "in-step",
	// "drifted", or "unknown" ("" is unknown too).
	Drift string

	// Compat says, for each disk set, whether it boots on the other
	// machine.
	Compat []Compat

	// RAID are the md arrays of both nodes as this node knows them.
	RAID []RAID

	// LastReport is when the last weekly report was made (zero: none yet).
	// ReportsEnabled says that this agent makes weekly reports: without it
	// and without a LastReport, sentry_last_report_timestamp_seconds is
	// left out, so that an agent that makes none is not alerted on.
	LastReport     time.Time
	ReportsEnabled bool

	// Peer is the other node's name; "" when no peer is configured or
	// known, and then no sentry_peer_* series is exported.
	Peer            string
	PeerReachable   bool
	PeerLastContact time.Time // zero: never in contact
}

// Check is one readiness check's outcome.
type Check struct {
	Name string
	// State is "pass", "fail", "unknown" (readiness.Stale; "stale" is
	// taken as its synonym) or "n/a".
	State string
	// Blocks: the finding keeps the pair from READY.
	Blocks bool
}

// Probe is the newest result of one probe on one node.
type Probe struct {
	Node     string
	Name     string
	OK       bool
	Duration time.Duration
	At       time.Time // when the run started (zero: unknown)
}

// Compat is whether one node's disk set boots on the other machine.
type Compat struct {
	DiskSet string // the node the disk set belongs to
	Machine string // the machine it would boot on
	Boots   string // "yes", "no", "unknown"
}

// RAID is one md array of one node.
type RAID struct {
	Node    string
	Array   string // md0
	Members int    // devices the array should have
	Up      int    // devices in sync
	// Action: "" (idle), "recover", "resync", "reshape", "check", "repair".
	Action string
}

// Bounds on the series of one scrape. A pair has two nodes, some 20
// readiness checks, fewer than 256 probes per node and a few arrays; past
// a bound the rest is left out and counted.
const (
	maxNodes         = 4 // distinct node names among the probes, and among the arrays
	maxProbesPerNode = 256
	maxChecks        = 64
	maxArraysPerNode = 32
	maxCompat        = 8
	maxLabelLen      = 128
)

// The label values of the state sets, in the order they are exported.
var (
	verdictStates = []string{"ready", "not_ready", "unknown", "not_judged"}
	checkStates   = []string{"pass", "fail", "unknown", "not_applicable"}
	driftStates   = []string{"in_step", "drifted", "unknown"}
	compatStates  = []string{"yes", "no", "unknown"}
	raidActions   = []string{"idle", "recover", "resync", "reshape", "check", "repair", "other"}
)

// collector is the prometheus.Collector of a Snapshot function.
type collector struct {
	snap    func() Snapshot
	version string
	d       descs
}

// descs are the collector's metric descriptions.
type descs struct {
	buildInfo, nodeInfo                                *prometheus.Desc
	ready, verdict, verdictTime                        *prometheus.Desc
	check, checkBlocking                               *prometheus.Desc
	probeSuccess, probeDuration, probeLastRun          *prometheus.Desc
	configHeadTime, configApplyFailed, configFailures  *prometheus.Desc
	drift, compat                                      *prometheus.Desc
	raidMembers, raidMembersUp, raidAction             *prometheus.Desc
	lastReport, peerUp, peerLastContact, droppedSeries *prometheus.Desc
}

func newDescs() descs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sentry_"+name, help, labels, nil)
	}
	return descs{
		buildInfo: d("build_info", "The agent's build: its version and the Go version it was built with; always 1.", "version", "goversion"),
		nodeInfo:  d("node_info", "This node: its name and role (primary, secondary, none); always 1. Join on instance to name the node of a target.", "node", "role"),

		ready:       d("ready", "1 when this node's readiness verdict is READY, else 0 (NOT READY, UNKNOWN, not judged yet)."),
		verdict:     d("verdict", "This node's readiness verdict, one series per verdict (ready, not_ready, unknown, not_judged), the current one 1.", "verdict"),
		verdictTime: d("verdict_timestamp_seconds", "Unix time of the current readiness verdict (absent before the first)."),

		check:         d("readiness_check", "Each readiness check's state, one series per state (pass, fail, unknown, not_applicable), the current one 1.", "check", "state"),
		checkBlocking: d("readiness_check_blocking", "1 when the readiness check keeps the pair from READY, else 0.", "check"),

		probeSuccess:  d("probe_success", "1 when the newest run of the probe on the node succeeded, else 0.", "node", "probe"),
		probeDuration: d("probe_duration_seconds", "How long the newest run of the probe on the node took.", "node", "probe"),
		probeLastRun:  d("probe_last_run_timestamp_seconds", "Unix time the newest run of the probe on the node started.", "node", "probe"),

		configHeadTime:    d("config_head_timestamp_seconds", "Unix time the primary committed its configuration head (absent when unknown)."),
		configApplyFailed: d("config_apply_failed", "1 while the secondary could not apply the primary's newest configuration commit, else 0."),
		configFailures:    d("config_apply_failures_total", "Configuration applies that failed on this node since the agent started."),

		drift:  d("packages_drift", "The package drift between the two nodes, one series per state (in_step, drifted, unknown), the current one 1.", "state"),
		compat: d("compat_boots", "Whether a node's disk set boots on the other machine, one series per answer (yes, no, unknown), the current one 1.", "disk_set", "machine", "state"),

		raidMembers:   d("raid_members", "Devices the md array should have.", "node", "array"),
		raidMembersUp: d("raid_members_up", "Devices of the md array in sync.", "node", "array"),
		raidAction:    d("raid_sync_action", "The md array's sync action, one series per action (idle, recover, resync, reshape, check, repair, other), the current one 1.", "node", "array", "action"),

		lastReport:      d("last_report_timestamp_seconds", "Unix time of the last weekly report; 0 when none was made yet (absent when the agent makes no reports)."),
		peerUp:          d("peer_up", "1 when the peer's agent answered the last exchange, else 0.", "peer"),
		peerLastContact: d("peer_last_contact_timestamp_seconds", "Unix time of the last successful exchange with the peer (absent before the first).", "peer"),
		droppedSeries:   d("exporter_dropped_series", "Series left out of this scrape because a kind of series was over its bound.", "kind"),
	}
}

func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		d.buildInfo, d.nodeInfo, d.ready, d.verdict, d.verdictTime, d.check, d.checkBlocking,
		d.probeSuccess, d.probeDuration, d.probeLastRun, d.configHeadTime, d.configApplyFailed, d.configFailures,
		d.drift, d.compat, d.raidMembers, d.raidMembersUp, d.raidAction,
		d.lastReport, d.peerUp, d.peerLastContact, d.droppedSeries,
	}
}

// NewCollector is a prometheus.Collector of the agent's state: snap is
// called once per scrape; version is the agent's version, exported in
// sentry_build_info.
func NewCollector(snap func() Snapshot, version string) prometheus.Collector {
	if version == "" {
		version = "unknown"
	}
	return &collector{snap: snap, version: version, d: newDescs()}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A snapshot function that
// panics fails the scrape (an invalid metric, which the handler turns into
// an HTTP error): the target goes down, which is alerted on, rather than
// its series silently going away.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var s Snapshot
	if err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("metrics: the agent's snapshot failed: %v", p)
			}
		}()
		s = c.snap()
		return nil
	}(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.d.ready, err)
		return
	}
	e := emitter{ch: ch, dropped: map[string]int{}}
	c.collect(&e, &s)
	kinds := make([]string, 0, len(e.dropped))
	for k := range e.dropped {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		e.gauge(c.d.droppedSeries, float64(e.dropped[k]), k)
	}
}

func (c *collector) collect(e *emitter, s *Snapshot) {
	d := &c.d
	e.gauge(d.buildInfo, 1, c.version, runtime.Version())
	e.gauge(d.nodeInfo, 1, s.Node, orNone(s.Role))

	verdict := verdictState(s.Verdict)
	e.gauge(d.ready, boolValue(verdict == "ready"))
	e.stateSet(d.verdict, verdictStates, verdict)
	if !s.VerdictAt.IsZero() {
		e.gauge(d.verdictTime, unixSeconds(s.VerdictAt))
	}

	seen := map[string]bool{} // true: exported, false: over the bound
	exported := 0
	for _, ch := range s.Checks {
		name := label(ch.Name)
		if _, ok := seen[name]; ok {
			continue // one series per check: the first wins
		}
		seen[name] = exported < maxChecks
		if !seen[name] {
			e.dropped["readiness_check"]++
			continue
		}
		exported++
		e.stateSet(d.check, checkStates, checkState(ch.State), name)
		e.gauge(d.checkBlocking, boolValue(ch.Blocks), name)
	}

	c.collectProbes(e, s.Probes)

	if !s.ConfigHeadAt.IsZero() {
		e.gauge(d.configHeadTime, unixSeconds(s.ConfigHeadAt))
	}
	e.gauge(d.configApplyFailed, boolValue(s.ConfigFailed))
	e.counter(d.configFailures, float64(max(s.ConfigApplyFailures, 0)))

	e.stateSet(d.drift, driftStates, driftState(s.Drift))

	type pair struct{ diskSet, machine string }
	compat := map[pair]bool{} // true: exported, false: over the bound
	exported = 0
	for _, x := range s.Compat {
		k := pair{label(x.DiskSet), label(x.Machine)}
		if _, ok := compat[k]; ok {
			continue
		}
		compat[k] = exported < maxCompat
		if !compat[k] {
			e.dropped["compat_boots"]++
			continue
		}
		exported++
		e.stateSet(d.compat, compatStates, compatState(x.Boots), k.diskSet, k.machine)
	}

	type array struct{ node, name string }
	arrays := map[array]bool{} // true: exported, false: over a bound
	perNode := map[string]int{}
	for _, a := range s.RAID {
		k := array{label(a.Node), label(a.Array)}
		if _, ok := arrays[k]; ok {
			continue
		}
		_, known := perNode[k.node]
		arrays[k] = (known || len(perNode) < maxNodes) && perNode[k.node] < maxArraysPerNode
		if !arrays[k] {
			e.dropped["raid"]++
			continue
		}
		perNode[k.node]++
		e.gauge(d.raidMembers, float64(max(a.Members, 0)), k.node, k.name)
		e.gauge(d.raidMembersUp, float64(max(a.Up, 0)), k.node, k.name)
		e.stateSet(d.raidAction, raidActions, raidAction(a.Action), k.node, k.name)
	}

	switch {
	case !s.LastReport.IsZero():
		e.gauge(d.lastReport, unixSeconds(s.LastReport))
	case s.ReportsEnabled:
		e.gauge(d.lastReport, 0) // none yet: "never" ages like "long ago"
	}
	if s.Peer != "" {
		peer := label(s.Peer)
		e.gauge(d.peerUp, boolValue(s.PeerReachable), peer)
		if !s.PeerLastContact.IsZero() {
			e.gauge(d.peerLastContact, unixSeconds(s.PeerLastContact), peer)
		}
	}
}

// collectProbes exports the newest result of each node's probes: a probe
// listed twice counts by its newest run.
func (c *collector) collectProbes(e *emitter, probes []Probe) {
	type key struct{ node, probe string }
	newest := map[key]Probe{}
	over := map[key]bool{}
	var order []key
	perNode := map[string]int{}
	for _, p := range probes {
		k := key{label(p.Node), label(p.Name)}
		if old, ok := newest[k]; ok {
			if p.At.After(old.At) {
				newest[k] = p
			}
			continue
		}
		if over[k] {
			continue
		}
		if _, known := perNode[k.node]; (!known && len(perNode) == maxNodes) || perNode[k.node] == maxProbesPerNode {
			over[k] = true
			e.dropped["probe"]++
			continue
		}
		perNode[k.node]++
		newest[k] = p
		order = append(order, k)
	}
	for _, k := range order {
		p := newest[k]
		e.gauge(c.d.probeSuccess, boolValue(p.OK), k.node, k.probe)
		e.gauge(c.d.probeDuration, max(p.Duration, 0).Seconds(), k.node, k.probe)
		if !p.At.IsZero() {
			e.gauge(c.d.probeLastRun, unixSeconds(p.At), k.node, k.probe)
		}
	}
}

// emitter sends const metrics; an error (a programming error: a wrong
// number of labels) goes to the scrape as an invalid metric.
type emitter struct {
	ch      chan<- prometheus.Metric
	dropped map[string]int
}

func (e *emitter) send(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	e.ch <- m
}

func (e *emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.GaugeValue, v, labels...)
}

func (e *emitter) counter(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.CounterValue, v, labels...)
}

// stateSet sends one series per state, current's 1 and the others 0; the
// state label comes last.
func (e *emitter) stateSet(d *prometheus.Desc, states []string, current string, labels ...string) {
	for _, st := range states {
		e.gauge(d, boolValue(st == current), append(labels[:len(labels):len(labels)], st)...)
	}
}

func verdictState(v string) string {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "READY":
		return "ready"
	case "NOT READY", "NOT_READY":
		return "not_ready"
	case "":
		return "not_judged"
	}
	return "unknown"
}

func checkState(s string) string {
	switch strings.ToLower(s) {
	case "pass":
		return "pass"
	case "fail":
		return "fail"
	case "n/a", "na", "not_applicable":
		return "not_applicable"
	}
	return "unknown" // "unknown", "stale", and what this package does not know
}

func driftState(s string) string {
	switch strings.ToLower(s) {
	case "in-step", "in_step":
		return "in_step"
	case "drifted":
		return "drifted"
	}
	return "unknown"
}

func compatState(s string) string {
	switch strings.ToLower(s) {
	case "yes", "no":
		return strings.ToLower(s)
	}
	return "unknown"
}

func raidAction(s string) string {
	switch s = strings.ToLower(s); s {
	case "", "idle":
		return "idle"
	case "recover", "resync", "reshape", "check", "repair":
		return s
	}
	return "other"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return label(s)
}

// label makes s a bounded label value: valid UTF-8, at most maxLabelLen
// bytes (cut on a character boundary).
func label(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxLabelLen {
		return s
	}
	n := maxLabelLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is t as a Unix time in seconds, to the millisecond.
func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }
