package metrics

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// at is a fixed moment, 2026-03-02 10:00:00 UTC (1772445600).
func at(minutes int) time.Time {
	return time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(minutes) * time.Minute)
}

// fixed is a secondary that judges the pair NOT READY: a probe fails on
// the primary, an array rebuilds, the packages drifted, a commit failed.
func fixed() Snapshot {
	return Snapshot{
		Node: "node-s", Role: "secondary",
		Verdict: "NOT READY", VerdictAt: at(0),
		Checks: []Check{
			{Name: "peer", State: "pass"},
			{Name: "verify.green", State: "fail", Blocks: true},
			{Name: "sync.failed", State: "fail", Blocks: true},
			{Name: "backup", State: "n/a"},
			{Name: "clock", State: "unknown"},
		},
		Probes: []Probe{
			{Node: "node-p", Name: "smb", OK: true, Duration: 250 * time.Millisecond, At: at(-1)},
			{Node: "node-p", Name: "mail", OK: false, Duration: 30 * time.Second, At: at(-2)},
			{Node: "node-s", Name: "smb", OK: true, Duration: 1500 * time.Millisecond, At: at(-1)},
		},
		ConfigHeadAt:        at(-30),
		ConfigApplyFailures: 3,
		ConfigFailed:        true,
		Drift:               "drifted",
		Compat: []Compat{
			{DiskSet: "node-p", Machine: "node-s", Boots: "yes"},
			{DiskSet: "node-s", Machine: "node-p", Boots: "no"},
		},
		RAID: []RAID{
			{Node: "node-p", Array: "md0", Members: 2, Up: 2},
			{Node: "node-s", Array: "md0", Members: 2, Up: 1, Action: "recover"},
		},
		LastReport:      at(-3 * 24 * 60),
		Peer:            "node-p",
		PeerReachable:   true,
		PeerLastContact: at(0).Add(-5 * time.Second),
	}
}

const fixedExposition = `
# HELP sentry_build_info The agent's build: its version and the Go version it was built with; always 1.
# TYPE sentry_build_info gauge
sentry_build_info{goversion="GOVERSION",version="1.4.0"} 1
# HELP sentry_compat_boots Whether a node's disk set boots on the other machine, one series per answer (yes, no, unknown), the current one 1.
# TYPE sentry_compat_boots gauge
sentry_compat_boots{disk_set="node-p",machine="node-s",state="no"} 0
sentry_compat_boots{disk_set="node-p",machine="node-s",state="unknown"} 0
sentry_compat_boots{disk_set="node-p",machine="node-s",state="yes"} 1
sentry_compat_boots{disk_set="node-s",machine="node-p",state="no"} 1
sentry_compat_boots{disk_set="node-s",machine="node-p",state="unknown"} 0
sentry_compat_boots{disk_set="node-s",machine="node-p",state="yes"} 0
# HELP sentry_config_apply_failed 1 while the secondary could not apply the primary's newest configuration commit, else 0.
# TYPE sentry_config_apply_failed gauge
sentry_config_apply_failed 1
# HELP sentry_config_apply_failures_total Configuration applies that failed on this node since the agent started.
# TYPE sentry_config_apply_failures_total counter
sentry_config_apply_failures_total 3
# HELP sentry_config_head_timestamp_seconds Unix time the primary committed its configuration head (absent when unknown).
# TYPE sentry_config_head_timestamp_seconds gauge
sentry_config_head_timestamp_seconds 1.7724438e+09
# HELP sentry_last_report_timestamp_seconds Unix time of the last weekly report; 0 when none was made yet (absent when the agent makes no reports).
# TYPE sentry_last_report_timestamp_seconds gauge
sentry_last_report_timestamp_seconds 1.7721864e+09
# HELP sentry_node_info This node: its name and role (primary, secondary, none); always 1. Join on instance to name the node of a target.
# TYPE sentry_node_info gauge
sentry_node_info{node="node-s",role="secondary"} 1
# HELP sentry_packages_drift The package drift between the two nodes, one series per state (in_step, drifted, unknown), the current one 1.
# TYPE sentry_packages_drift gauge
sentry_packages_drift{state="drifted"} 1
sentry_packages_drift{state="in_step"} 0
sentry_packages_drift{state="unknown"} 0
# HELP sentry_peer_last_contact_timestamp_seconds Unix time of the last successful exchange with the peer (absent before the first).
# TYPE sentry_peer_last_contact_timestamp_seconds gauge
sentry_peer_last_contact_timestamp_seconds{peer="node-p"} 1.772445595e+09
# HELP sentry_peer_up 1 when the peer's agent answered the last exchange, else 0.
# TYPE sentry_peer_up gauge
sentry_peer_up{peer="node-p"} 1
# HELP sentry_probe_duration_seconds How long the newest run of the probe on the node took.
# TYPE sentry_probe_duration_seconds gauge
sentry_probe_duration_seconds{node="node-p",probe="mail"} 30
sentry_probe_duration_seconds{node="node-p",probe="smb"} 0.25
sentry_probe_duration_seconds{node="node-s",probe="smb"} 1.5
# HELP sentry_probe_last_run_timestamp_seconds Unix time the newest run of the probe on the node started.
# TYPE sentry_probe_last_run_timestamp_seconds gauge
sentry_probe_last_run_timestamp_seconds{node="node-p",probe="mail"} 1.77244548e+09
sentry_probe_last_run_timestamp_seconds{node="node-p",probe="smb"} 1.77244554e+09
sentry_probe_last_run_timestamp_seconds{node="node-s",probe="smb"} 1.77244554e+09
# HELP sentry_probe_success 1 when the newest run of the probe on the node succeeded, else 0.
# TYPE sentry_probe_success gauge
sentry_probe_success{node="node-p",probe="mail"} 0
sentry_probe_success{node="node-p",probe="smb"} 1
sentry_probe_success{node="node-s",probe="smb"} 1
# HELP sentry_raid_members Devices the md array should have.
# TYPE sentry_raid_members gauge
sentry_raid_members{array="md0",node="node-p"} 2
sentry_raid_members{array="md0",node="node-s"} 2
# HELP sentry_raid_members_up Devices of the md array in sync.
# TYPE sentry_raid_members_up gauge
sentry_raid_members_up{array="md0",node="node-p"} 2
sentry_raid_members_up{array="md0",node="node-s"} 1
# HELP sentry_raid_sync_action The md array's sync action, one series per action (idle, recover, resync, reshape, check, repair, other), the current one 1.
# TYPE sentry_raid_sync_action gauge
sentry_raid_sync_action{action="check",array="md0",node="node-p"} 0
sentry_raid_sync_action{action="idle",array="md0",node="node-p"} 1
sentry_raid_sync_action{action="other",array="md0",node="node-p"} 0
sentry_raid_sync_action{action="recover",array="md0",node="node-p"} 0
sentry_raid_sync_action{action="repair",array="md0",node="node-p"} 0
sentry_raid_sync_action{action="reshape",array="md0",node="node-p"} 0
sentry_raid_sync_action{action="resync",array="md0",node="node-p"} 0
sentry_raid_sync_action{action="check",array="md0",node="node-s"} 0
sentry_raid_sync_action{action="idle",array="md0",node="node-s"} 0
sentry_raid_sync_action{action="other",array="md0",node="node-s"} 0
sentry_raid_sync_action{action="recover",array="md0",node="node-s"} 1
sentry_raid_sync_action{action="repair",array="md0",node="node-s"} 0
sentry_raid_sync_action{action="reshape",array="md0",node="node-s"} 0
sentry_raid_sync_action{action="resync",array="md0",node="node-s"} 0
# HELP sentry_readiness_check Each readiness check's state, one series per state (pass, fail, unknown, not_applicable), the current one 1.
# TYPE sentry_readiness_check gauge
sentry_readiness_check{check="backup",state="fail"} 0
sentry_readiness_check{check="backup",state="not_applicable"} 1
sentry_readiness_check{check="backup",state="pass"} 0
sentry_readiness_check{check="backup",state="unknown"} 0
sentry_readiness_check{check="clock",state="fail"} 0
sentry_readiness_check{check="clock",state="not_applicable"} 0
sentry_readiness_check{check="clock",state="pass"} 0
sentry_readiness_check{check="clock",state="unknown"} 1
sentry_readiness_check{check="peer",state="fail"} 0
sentry_readiness_check{check="peer",state="not_applicable"} 0
sentry_readiness_check{check="peer",state="pass"} 1
sentry_readiness_check{check="peer",state="unknown"} 0
sentry_readiness_check{check="sync.failed",state="fail"} 1
sentry_readiness_check{check="sync.failed",state="not_applicable"} 0
sentry_readiness_check{check="sync.failed",state="pass"} 0
sentry_readiness_check{check="sync.failed",state="unknown"} 0
sentry_readiness_check{check="verify.green",state="fail"} 1
sentry_readiness_check{check="verify.green",state="not_applicable"} 0
sentry_readiness_check{check="verify.green",state="pass"} 0
sentry_readiness_check{check="verify.green",state="unknown"} 0
# HELP sentry_readiness_check_blocking 1 when the readiness check keeps the pair from READY, else 0.
# TYPE sentry_readiness_check_blocking gauge
sentry_readiness_check_blocking{check="backup"} 0
sentry_readiness_check_blocking{check="clock"} 0
sentry_readiness_check_blocking{check="peer"} 0
sentry_readiness_check_blocking{check="sync.failed"} 1
sentry_readiness_check_blocking{check="verify.green"} 1
# HELP sentry_ready 1 when this node's readiness verdict is READY, else 0 (NOT READY, UNKNOWN, not judged yet).
# TYPE sentry_ready gauge
sentry_ready 0
# HELP sentry_verdict This node's readiness verdict, one series per verdict (ready, not_ready, unknown, not_judged), the current one 1.
# TYPE sentry_verdict gauge
sentry_verdict{verdict="not_judged"} 0
sentry_verdict{verdict="not_ready"} 1
sentry_verdict{verdict="ready"} 0
sentry_verdict{verdict="unknown"} 0
# HELP sentry_verdict_timestamp_seconds Unix time of the current readiness verdict (absent before the first).
# TYPE sentry_verdict_timestamp_seconds gauge
sentry_verdict_timestamp_seconds 1.7724456e+09
`

func TestCollectFixedSnapshot(t *testing.T) {
	c := NewCollector(fixed, "1.4.0")
	want := strings.ReplaceAll(fixedExposition, "GOVERSION", runtime.Version())
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestLint(t *testing.T) {
	for name, c := range map[string]prometheus.Collector{
		"fixed": NewCollector(fixed, "1.4.0"),
		"empty": NewCollector(func() Snapshot { return Snapshot{} }, ""),
	} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
	}
}

// Each state set has exactly one series at 1, whatever the agent's word.
func TestStateSetsOneHot(t *testing.T) {
	cases := []struct {
		in   Snapshot
		name string
		want map[string]string // metric: the label value at 1
	}{
		{Snapshot{Verdict: "READY"}, "ready", map[string]string{"sentry_verdict": "ready"}},
		{Snapshot{Verdict: "UNKNOWN"}, "unknown", map[string]string{"sentry_verdict": "unknown"}},
		{Snapshot{Verdict: ""}, "not judged", map[string]string{"sentry_verdict": "not_judged", "sentry_packages_drift": "unknown"}},
		{Snapshot{Verdict: "SOMETHING NEW", Drift: "in-step"}, "an unknown verdict", map[string]string{"sentry_verdict": "unknown", "sentry_packages_drift": "in_step"}},
		{Snapshot{Checks: []Check{{Name: "peer", State: "stale"}}}, "stale is unknown", map[string]string{"sentry_readiness_check": "unknown"}},
		{Snapshot{Checks: []Check{{Name: "peer", State: "exploded"}}}, "an unknown state", map[string]string{"sentry_readiness_check": "unknown"}},
		{Snapshot{Compat: []Compat{{DiskSet: "a", Machine: "b", Boots: "maybe"}}}, "an unknown answer", map[string]string{"sentry_compat_boots": "unknown"}},
		{Snapshot{RAID: []RAID{{Node: "a", Array: "md1", Members: 2, Up: 2, Action: "frozen"}}}, "an unknown action", map[string]string{"sentry_raid_sync_action": "other"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mfs := gather(t, NewCollector(func() Snapshot { return tc.in }, "v"))
			for metric, wantOn := range tc.want {
				var on []string
				total := 0
				for _, m := range mfs[metric] {
					total++
					if m.value == 1 {
						on = append(on, m.labels[stateLabel(metric)])
					}
				}
				if len(on) != 1 || on[0] != wantOn {
					t.Errorf("%s: series at 1: %v of %d, want only %q", metric, on, total, wantOn)
				}
			}
			if got := mfs["sentry_ready"][0].value; got != boolValue(tc.in.Verdict == "READY") {
				t.Errorf("sentry_ready = %v for verdict %q", got, tc.in.Verdict)
			}
		})
	}
}

func stateLabel(metric string) string {
	switch metric {
	case "sentry_verdict":
		return "verdict"
	case "sentry_raid_sync_action":
		return "action"
	}
	return "state"
}

// What is not known is left out, not exported as 0 (the epoch), except
// the last report of an agent that makes reports; no peer means no peer
// series.
func TestUnknownTimesLeftOut(t *testing.T) {
	mfs := gather(t, NewCollector(func() Snapshot {
		return Snapshot{Node: "node-p", Probes: []Probe{{Node: "node-p", Name: "smb", OK: true}}, ReportsEnabled: true}
	}, "v"))
	for _, name := range []string{"sentry_verdict_timestamp_seconds", "sentry_config_head_timestamp_seconds",
		"sentry_probe_last_run_timestamp_seconds", "sentry_peer_up", "sentry_peer_last_contact_timestamp_seconds",
		"sentry_exporter_dropped_series"} {
		if len(mfs[name]) != 0 {
			t.Errorf("%s exported: %+v", name, mfs[name])
		}
	}
	if m := mfs["sentry_last_report_timestamp_seconds"]; len(m) != 1 || m[0].value != 0 {
		t.Errorf("sentry_last_report_timestamp_seconds = %+v, want one series at 0", m)
	}
	if m := mfs["sentry_node_info"]; len(m) != 1 || m[0].labels["role"] != "none" {
		t.Errorf("sentry_node_info = %+v, want role none", m)
	}
	mfs = gather(t, NewCollector(func() Snapshot { return Snapshot{Peer: "node-s"} }, "v"))
	if m := mfs["sentry_last_report_timestamp_seconds"]; len(m) != 0 {
		t.Errorf("an agent that makes no reports exports sentry_last_report_timestamp_seconds = %+v", m)
	}
	if m := mfs["sentry_peer_up"]; len(m) != 1 || m[0].value != 0 || m[0].labels["peer"] != "node-s" {
		t.Errorf("sentry_peer_up = %+v, want node-s at 0", m)
	}
	if len(mfs["sentry_peer_last_contact_timestamp_seconds"]) != 0 {
		t.Error("a peer never in contact has a last contact time")
	}
}

// A snapshot with more probes, arrays or checks than the bounds, repeated
// entries and odd label values still gathers: bounded, deduplicated, valid.
func TestCardinalityBounded(t *testing.T) {
	var s Snapshot
	for n := range 6 {
		for i := range maxProbesPerNode + 10 {
			s.Probes = append(s.Probes, Probe{Node: fmt.Sprintf("node-%d", n), Name: fmt.Sprintf("probe-%03d", i), OK: true, At: at(0)})
		}
		for i := range maxArraysPerNode + 1 {
			s.RAID = append(s.RAID, RAID{Node: fmt.Sprintf("node-%d", n), Array: fmt.Sprintf("md%d", i), Members: 2, Up: 2})
		}
	}
	// The same probe twice: the newest run counts.
	s.Probes = append(s.Probes, Probe{Node: "node-0", Name: "probe-000", OK: false, At: at(1)}, Probe{Node: "node-0", Name: "probe-000", OK: true, At: at(-1)})
	for i := range maxChecks + 5 {
		s.Checks = append(s.Checks, Check{Name: fmt.Sprintf("check-%d", i), State: "pass"}, Check{Name: fmt.Sprintf("check-%d", i), State: "fail"})
	}
	for i := range maxCompat + 2 {
		s.Compat = append(s.Compat, Compat{DiskSet: fmt.Sprint(i), Machine: "m", Boots: "yes"})
	}
	bad := "bad \xff utf-8 " + strings.Repeat("é", 200)
	s.Checks[0].Name, s.Checks[1].Name = bad, bad
	mfs := gather(t, NewCollector(func() Snapshot { return s }, "v"))

	count := func(name string) int { return len(mfs[name]) }
	if got, want := count("sentry_probe_success"), maxNodes*maxProbesPerNode; got != want {
		t.Errorf("%d probe series, want %d", got, want)
	}
	if got, want := count("sentry_raid_members"), maxNodes*maxArraysPerNode; got != want {
		t.Errorf("%d array series, want %d", got, want)
	}
	if got, want := count("sentry_readiness_check_blocking"), maxChecks; got != want {
		t.Errorf("%d check series, want %d", got, want)
	}
	if got, want := count("sentry_compat_boots"), maxCompat*len(compatStates); got != want {
		t.Errorf("%d compat series, want %d", got, want)
	}
	dropped := map[string]float64{}
	for _, m := range mfs["sentry_exporter_dropped_series"] {
		dropped[m.labels["kind"]] = m.value
	}
	wantDropped := map[string]float64{
		"probe":           float64(6*(maxProbesPerNode+10) - maxNodes*maxProbesPerNode),
		"raid":            float64(6*(maxArraysPerNode+1) - maxNodes*maxArraysPerNode),
		"readiness_check": 5,
		"compat_boots":    2,
	}
	if fmt.Sprint(dropped) != fmt.Sprint(wantDropped) {
		t.Errorf("dropped = %v, want %v", dropped, wantDropped)
	}
	for _, m := range mfs["sentry_probe_success"] {
		if m.labels["node"] == "node-0" && m.labels["probe"] == "probe-000" && m.value != 0 {
			t.Error("a probe listed twice does not count by its newest run")
		}
	}
	for _, m := range mfs["sentry_readiness_check_blocking"] {
		if l := m.labels["check"]; len(l) > maxLabelLen || !utf8Valid(l) {
			t.Errorf("label value %q: %d bytes or invalid UTF-8", l, len(l))
		}
	}
}

// A snapshot function that panics fails the scrape instead of taking the
// agent down or leaving the sentry series out silently.
func TestSnapshotPanicFailsScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(func() Snapshot { panic("boom") }, "v"))
	_, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "the agent's snapshot failed: boom") {
		t.Errorf("Gather = %v, want the snapshot's panic", err)
	}
}

// The pedantic registry checks that every collected metric matches a
// described one, and that the collector is consistent.
func TestPedantic(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(fixed, "1.4.0")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

type sample struct {
	labels map[string]string
	value  float64
}

// gather collects c into samples by metric name.
func gather(t *testing.T, c prometheus.Collector) map[string][]sample {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]sample{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			}
			out[mf.GetName()] = append(out[mf.GetName()], s)
		}
	}
	return out
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
