package report

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
)

// fixture writes a history into a store in the test's temp folder.
type fixture struct {
	t      testing.TB
	st     *store.Store
	rng    *rand.Rand
	probes []probeSpec
	nodes  []string
	step   time.Duration
	// down says a node has no results at a time (a failover, the peer
	// gone); fail says a round fails, and in which phase.
	down func(node string, at time.Time) bool
	fail func(node, probe string, at time.Time) (bool, string)
}

type probeSpec struct {
	name, kind string
	ms         int // typical latency
}

var fixtureProbes = []probeSpec{{"web", "http", 40}, {"mail", "mail", 900}, {"db", "postgres", 8}, {"disk-root", "disk", 2}}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{t: t, st: st, rng: rand.New(rand.NewPCG(16, 49)), probes: fixtureProbes, nodes: []string{"alpha", "beta"}, step: 5 * time.Minute,
		down: func(string, time.Time) bool { return false },
		fail: func(string, string, time.Time) (bool, string) { return false, "" }}
}

// rounds stores the rounds of [from, to), a day per transaction.
func (f *fixture) rounds(from, to time.Time) {
	f.t.Helper()
	var batch []store.StoredResult
	flush := func() {
		if err := f.st.PutResults(batch...); err != nil {
			f.t.Fatal(err)
		}
		batch = batch[:0]
	}
	for at := from; at.Before(to); at = at.Add(f.step) {
		for ni, node := range f.nodes {
			if f.down(node, at) {
				continue
			}
			for _, p := range f.probes {
				failed, phase := f.fail(node, p.name, at)
				d := int64(float64(p.ms) * (0.7 + 0.6*f.rng.Float64()))
				if f.rng.IntN(100) == 0 {
					d *= 4
				}
				r := store.StoredResult{Node: node, Probe: p.name, Kind: p.kind, Start: at, DurationMS: d, OK: !failed, FailedPhase: phase}
				if failed {
					r.Message = phase + ": failed"
				}
				if p.kind == "disk" {
					days := at.Sub(from).Hours() / 24
					r.Values = map[string]string{"free_percent": fmt.Sprintf("%.1f", 62-float64(ni)*20-days*1.5)}
				}
				batch = append(batch, r)
			}
		}
		if at.Add(f.step).Truncate(24*time.Hour) != at.Truncate(24*time.Hour) {
			flush()
		}
	}
	flush()
}

func (f *fixture) event(at time.Time, kind, node, msg string, fields map[string]string) {
	f.t.Helper()
	if _, err := f.st.AppendEvent(store.Event{Time: at, Kind: kind, Node: node, Message: msg, Fields: fields}); err != nil {
		f.t.Fatal(err)
	}
}

// ready records a verdict change of alpha.
func (f *fixture) ready(at time.Time, verdict, cause string) {
	msg := verdict
	if cause != "" {
		msg += ": " + cause
	}
	f.event(at, "ready-changed", "alpha", msg, map[string]string{"verdict": verdict, "key": verdict})
}

func (f *fixture) restore(run RestoreRun) {
	f.t.Helper()
	e, err := run.Event()
	if err != nil {
		f.t.Fatal(err)
	}
	f.event(e.Time, e.Kind, e.Node, e.Message, e.Fields)
}

func (f *fixture) verdict(res readiness.Result) {
	f.t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.PutVerdict(b); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) failover(rec failover.Record) {
	f.t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.PutFailoverDoc("record", rec.ID, b); err != nil {
		f.t.Fatal(err)
	}
}

// readyFindings is a READY verdict's findings on the compatibility,
// modules, RAID and disks.
func readyFindings(at time.Time) []readiness.Finding {
	ev := func(node, what, value string) readiness.Evidence {
		return readiness.Evidence{Node: node, What: what, Value: value, Measured: at}
	}
	return []readiness.Finding{
		{Check: "boot.compat", State: readiness.Pass, Severity: readiness.Block, Reason: "each disk set boots on the other machine",
			Evidence: []readiness.Evidence{ev("alpha", "disks of alpha on beta's hardware", "0000:00:1f.2 ahci: driver in alpha's initramfs; 0000:03:00.0 igb: driver present"),
				ev("beta", "disks of beta on alpha's hardware", "0000:00:17.0 ahci: driver in beta's initramfs; 0000:02:00.0 e1000e: driver present")}},
		{Check: "boot.loader", State: readiness.Pass, Severity: readiness.Block, Reason: "fallback loader on every member"},
		{Check: "modules", State: readiness.Pass, Severity: readiness.Block, Reason: "module versions and selection identical",
			Evidence: []readiness.Evidence{ev("", "modules", "postfix@1.4.0 dovecot@2.1.0 postgres@1.0.3 web@1.2.0")}},
		{Check: "raid", State: readiness.Pass, Severity: readiness.Block, Reason: "md0, md1 clean on both nodes",
			Evidence: []readiness.Evidence{ev("alpha", "md0", "clean [UU]"), ev("beta", "md0", "clean [UU]")}},
		{Check: "disks", State: readiness.Pass, Severity: readiness.Warn, Reason: "SMART healthy on 4 disks"},
	}
}

// week49 is 2026-W49: Monday 30 November 2026.
var (
	w48 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	w49 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
)

func clockAt(t time.Time) Option { return WithClock(func() time.Time { return t }) }

// commonWeek writes what every fixture week has: the rounds of the week
// before and of this week (until to), a configuration commit and its
// apply, the inventories, the drift state and a good restore test.
func (f *fixture) commonWeek(start, to time.Time) {
	prev := start.AddDate(0, 0, -7)
	f.ready(prev.Add(-time.Hour), "READY", "")
	f.event(prev.Add(2*time.Hour), "inventory", "alpha", "inventory taken (boot): 612 packages, boot kernel 6.12.57+deb13-amd64, 14 PCI devices", map[string]string{"packages": "612"})
	f.event(prev.Add(2*time.Hour), "inventory", "beta", "inventory taken (boot): 612 packages, boot kernel 6.12.57+deb13-amd64, 12 PCI devices", map[string]string{"packages": "612"})
	f.rounds(prev, to)
	f.event(start.Add(26*time.Hour), "config-commit", "alpha", "configuration commit 3f2a9c1b7d4e: 2 path(s) changed",
		map[string]string{"commit": "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345", "paths": "/etc/postfix/main.cf /etc/dovecot/conf.d/10-ssl.conf"})
	f.event(start.Add(26*time.Hour+time.Minute), "config-applied", "beta", "configuration 3f2a9c1b7d4e applied: 2 path(s), reloaded postfix.service dovecot.service", map[string]string{"commit": "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345"})
	f.event(start.Add(50*time.Hour), "parity-apply", "beta", "install linux-image-6.12.58+deb13-amd64 done (Debian archive, signed)", map[string]string{"action": "install"})
	f.event(start.Add(51*time.Hour), "inventory", "alpha", "inventory taken (package change): 613 packages, boot kernel 6.12.58+deb13-amd64, 14 PCI devices", nil)
	f.event(start.Add(51*time.Hour), "inventory", "beta", "inventory taken (package change): 613 packages, boot kernel 6.12.58+deb13-amd64, 12 PCI devices", nil)
	f.event(start.Add(51*time.Hour+time.Minute), "drift", "alpha", "packages in step with the peer", map[string]string{"state": "in-step"})
	f.restore(RestoreRun{At: start.Add(3*24*time.Hour + 3*time.Hour), Node: "alpha", Repo: "sftp:backup@nas:/srv/restic/office", Snapshot: "4f1c2b9e",
		Subset: "3/52", CheckedPacks: 61, CheckedBytes: 14_200_000, FilesRestored: 20, FilesCompared: 20, DurationS: 312})
}

// fixtureReady is a READY week: 2026-W48, reported on Monday after it.
func fixtureReady(t testing.TB) (*fixture, *Builder) {
	f := newFixture(t)
	now := w49.Add(10 * time.Minute)
	f.commonWeek(w48, w49)
	f.verdict(readiness.Result{Verdict: readiness.Ready, At: now.Add(-time.Minute), Findings: readyFindings(now.Add(-time.Hour))})
	return f, New(f.st, WithCluster("office"), WithNodes("alpha", "beta"), clockAt(now))
}

// fixtureNotReady is 2026-W48 with NOT READY spells: web failing on beta
// for three hours, a failed configuration apply, the peer gone for 40
// minutes, and package drift at the end.
func fixtureNotReady(t testing.TB) (*fixture, *Builder) {
	f := newFixture(t)
	now := w49.Add(10 * time.Minute)
	webDown := w48.Add(2*24*time.Hour + 9*time.Hour)
	peerGone := w48.Add(4*24*time.Hour + 14*time.Hour)
	f.fail = func(node, probe string, at time.Time) (bool, string) {
		if node == "beta" && probe == "web" && !at.Before(webDown) && at.Before(webDown.Add(3*time.Hour)) {
			return true, "connect"
		}
		if probe == "mail" && at.Minute() == 0 && at.Hour()%6 == 0 && at.After(w48) {
			return true, "imap-fetch"
		}
		return false, ""
	}
	f.down = func(node string, at time.Time) bool {
		return node == "beta" && !at.Before(peerGone) && at.Before(peerGone.Add(40*time.Minute))
	}
	f.commonWeek(w48, w49)
	f.ready(webDown.Add(5*time.Minute), "NOT READY", "verify.green: web on beta: connect: connection refused (and 1 more)")
	f.ready(webDown.Add(3*time.Hour+5*time.Minute), "READY", "")
	cfgFail := w48.Add(3*24*time.Hour + 11*time.Hour)
	f.event(cfgFail, "config-apply-failed", "beta", "configuration 9d8e7f6a5b4c failed to apply; rolled back to 3f2a9c1b7d4e: postfix check: main.cf line 12: bad parameter; it waits for a newer commit or sync --force",
		map[string]string{"commit": "9d8e7f6a5b4c3d2e1f00112233445566778899aa"})
	f.ready(cfgFail.Add(30*time.Second), "NOT READY", "sync.failed: beta failed to apply configuration 9d8e7f6a5b4c")
	f.event(cfgFail.Add(95*time.Minute), "config-commit", "alpha", "configuration commit 0a1b2c3d4e5f: 1 path(s) changed",
		map[string]string{"commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567", "paths": "/etc/postfix/main.cf"})
	f.ready(cfgFail.Add(100*time.Minute), "READY", "")
	f.event(w48.Add(5*24*time.Hour+8*time.Hour), "config-drift-found", "beta", "/etc/hosts differs from the primary's configuration (content); the next apply or sync --force overwrites it", map[string]string{"path": "/etc/hosts"})
	f.event(peerGone, "peer-unreachable", "beta", "peer beta at 10.0.0.2:7443 does not answer: connection refused", nil)
	f.ready(peerGone.Add(time.Minute), "UNKNOWN", "peer: beta does not answer (last heard 1m ago)")
	f.event(peerGone.Add(40*time.Minute), "peer-reachable", "beta", "peer beta answers", nil)
	f.ready(peerGone.Add(41*time.Minute), "READY", "")
	drift := w48.Add(6*24*time.Hour + 20*time.Hour)
	f.event(drift, "drift", "alpha", "packages drifted: 1 difference(s): openssl 3.5.1-1 on alpha, 3.5.0-3 on beta", map[string]string{"state": "drifted"})
	f.ready(drift.Add(time.Minute), "NOT READY", "packages: openssl differs: 3.5.1-1 on alpha, 3.5.0-3 on beta")
	res := readiness.Result{Verdict: readiness.NotReady, At: now.Add(-time.Minute), Findings: append([]readiness.Finding{
		{Check: "packages", State: readiness.Fail, Severity: readiness.Block, Blocks: true, Reason: "openssl differs: 3.5.1-1 on alpha, 3.5.0-3 on beta", Fix: "sentry parity plan"},
	}, readyFindings(now.Add(-time.Hour))...)}
	f.verdict(res)
	return f, New(f.st, WithCluster("office"), WithNodes("alpha", "beta"), clockAt(now))
}

// fixtureRestoreFailed is 2026-W49 so far (Thursday morning): a restore
// test skipped (the repository locked by a backup), then one that failed,
// NOT READY since.
func fixtureRestoreFailed(t testing.TB) (*fixture, *Builder) {
	f := newFixture(t)
	now := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)
	f.ready(w48.Add(-time.Hour), "READY", "")
	f.rounds(w48, now)
	f.event(w48.Add(2*time.Hour), "inventory", "alpha", "inventory taken (boot): 612 packages, boot kernel 6.12.57+deb13-amd64, 14 PCI devices", nil)
	f.event(w48.Add(2*time.Hour), "drift", "alpha", "packages in step with the peer", map[string]string{"state": "in-step"})
	f.restore(RestoreRun{At: w48.Add(3 * 24 * time.Hour), Node: "alpha", Repo: "sftp:backup@nas:/srv/restic/office", Snapshot: "a0b1c2d3", Subset: "2/52", CheckedPacks: 59, CheckedBytes: 12_900_000, FilesRestored: 20, FilesCompared: 20})
	f.restore(RestoreRun{At: w49.Add(3 * time.Hour), Node: "alpha", Repo: "sftp:backup@nas:/srv/restic/office", Skipped: "repository locked by a running backup (restic lock 7e2f...)"})
	failAt := w49.Add(24*time.Hour + 3*time.Hour)
	f.restore(RestoreRun{At: failAt, Node: "alpha", Repo: "sftp:backup@nas:/srv/restic/office", Snapshot: "b4c5d6e7", Subset: "3/52", CheckedPacks: 60, CheckedBytes: 13_100_000,
		FilesRestored: 20, FilesCompared: 20, Mismatches: []string{"/srv/mail/office/cur/1733212345.M1P2.alpha", "/var/lib/postgresql/17/main/base/16384/2619"},
		Command: "restic -r sftp:backup@nas:/srv/restic/office check --read-data-subset=3/52"})
	f.ready(failAt.Add(time.Minute), "NOT READY", "backup: the restore test of sftp:backup@nas:/srv/restic/office failed: 2 of 20 files differ from snapshot b4c5d6e7")
	res := readiness.Result{Verdict: readiness.NotReady, At: now.Add(-30 * time.Second), Findings: append([]readiness.Finding{
		{Check: "backup", State: readiness.Fail, Severity: readiness.Block, Blocks: true, Reason: "the last restore test failed: 2 of 20 files differ from snapshot b4c5d6e7",
			Fix: "restic -r sftp:backup@nas:/srv/restic/office check --read-data-subset=3/52"},
	}, readyFindings(now.Add(-time.Hour))...)}
	f.verdict(res)
	return f, New(f.st, WithCluster("office"), WithNodes("alpha", "beta"), clockAt(now))
}

// fixtureFailover is 2026-W48 with an unplanned failover on Wednesday
// (alpha's machine died; its disks booted on beta's machine) and a
// planned drill back on Saturday.
func fixtureFailover(t testing.TB) (*fixture, *Builder) {
	f := newFixture(t)
	now := w49.Add(10 * time.Minute)
	died := w48.Add(2*24*time.Hour + 13*time.Hour + 7*time.Minute)
	back := died.Add(6*time.Minute + 40*time.Second)
	f.down = func(node string, at time.Time) bool {
		return node == "alpha" && !at.Before(died) && at.Before(back)
	}
	f.commonWeek(w48, w49)
	f.event(died.Add(30*time.Second), "peer-unreachable", "alpha", "peer alpha at 10.0.0.1:7443 does not answer: i/o timeout", nil)
	f.ready(died.Add(time.Minute), "NOT READY", "peer: alpha does not answer; stamps: no primary running")
	f.event(back, "failover", "alpha", "failover: disk set office-a booted on machine m-beta (was m-alpha)", nil)
	f.event(back.Add(time.Minute), "peer-reachable", "alpha", "peer alpha answers", nil)
	f.ready(back.Add(20*time.Minute), "READY", "")
	f.failover(failover.Record{ID: "20261125T130700Z-failover", Kind: failover.KindFailover, DiskSet: "office-a", Node: "alpha", FromMachine: "m-alpha", ToMachine: "m-beta",
		LastPeerContact: died, Boot: died.Add(3 * time.Minute), Decision: died.Add(4 * time.Minute), AddressUp: died.Add(4*time.Minute + 10*time.Second),
		Services: map[string]time.Time{"web": back.Add(-20 * time.Second), "mail": back}, PeerBack: back.Add(2 * time.Minute),
		VerdictAfter: "READY", VerdictAt: back.Add(20 * time.Minute), Complete: true})
	drill := w48.Add(5*24*time.Hour + 10*time.Hour)
	f.ready(drill, "NOT READY", "stamps: planned swap in progress")
	f.ready(drill.Add(4*time.Minute), "READY", "")
	f.failover(failover.Record{ID: "20261128T100000Z-planned", Kind: failover.KindPlanned, DiskSet: "office-a", Node: "alpha", FromMachine: "m-beta", ToMachine: "m-alpha",
		LastPeerContact: drill, Boot: drill.Add(80 * time.Second), Decision: drill.Add(2 * time.Minute), AddressUp: drill.Add(2*time.Minute + 5*time.Second),
		Services: map[string]time.Time{"web": drill.Add(150 * time.Second), "mail": drill.Add(170 * time.Second)}, PeerBack: drill.Add(3 * time.Minute),
		VerdictAfter: "READY", VerdictAt: drill.Add(4 * time.Minute), Complete: true})
	f.verdict(readiness.Result{Verdict: readiness.Ready, At: now.Add(-time.Minute), Findings: readyFindings(now.Add(-time.Hour))})
	return f, New(f.st, WithCluster("office"), WithNodes("alpha", "beta"), clockAt(now))
}
