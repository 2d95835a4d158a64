package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sentryha/sentry/internal/readiness"
)

// TestFromReadiness: a verdict judged by the real registry on a pair's
// facts becomes the snapshot the collector exports: this node's role, the
// peer, both nodes' probes and arrays, the drift from the packages check,
// compat, the secondary's failed apply.
func TestFromReadiness(t *testing.T) {
	now := time.Now()
	p := &readiness.Node{Name: "node-p", Role: "primary", ConfigHeadAt: now.Add(-time.Minute),
		Probes: []readiness.Probe{{Name: "web", OK: true, At: now, Duration: 120 * time.Millisecond}},
		RAID:   &readiness.RAIDFacts{At: now, Arrays: []readiness.Array{{Name: "md0", Members: 2, Up: 1, Action: "recover"}}}}
	s := &readiness.Node{Name: "node-s", Role: "secondary", ConfigFailed: "abc", Probes: []readiness.Probe{{Name: "web", OK: false, At: now}}}
	in := &readiness.Input{Now: now, Self: "node-s", Primary: p, Secondary: s, PeerReachable: true, PeerContact: now,
		Compat: []readiness.CompatFacts{{DiskSet: "node-p", Machine: "b", Boots: "no"}}}
	res := readiness.Default().Evaluate(in)
	snap := FromReadiness("node-s", in, res, 2)
	if snap.Role != "secondary" || snap.Peer != "node-p" || !snap.PeerReachable || len(snap.Probes) != 2 || len(snap.RAID) != 1 ||
		!snap.ConfigFailed || snap.ConfigApplyFailures != 2 || len(snap.Compat) != 1 || snap.Verdict != "NOT READY" || len(snap.Checks) != len(res.Findings) {
		t.Fatalf("snapshot: %+v", snap)
	}
	if snap.Probes[0].Duration != 120*time.Millisecond {
		t.Errorf("probe duration %s", snap.Probes[0].Duration)
	}
	c := NewCollector(func() Snapshot { return snap }, "test")
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP sentry_ready 1 when this node's readiness verdict is READY, else 0 (NOT READY, UNKNOWN, not judged yet).
# TYPE sentry_ready gauge
sentry_ready 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sentry_ready"); err != nil {
		t.Error(err)
	}
}
