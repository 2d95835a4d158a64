package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/report"
)

// backupRestic is a module with the backup probe of a restic repository
// (issue 16): each node backs its office files up into /srv/restic.
const backupRestic = `schema = 2
name = "backup-restic"
version = "1.0.0"
kind = "system"
description = "the office files, backed up with restic"
packages = ["restic"]

[[probes]]
name = "backup"
kind = "backup"
params = { restic_repo = "/srv/restic", restic_password_file = "/root/restic-password", max_age = "26h" }
`

// backupFinding is the verdict's finding of the check "backup" on set.
func backupFinding(t *testing.T, set string) readiness.Finding {
	t.Helper()
	r, _ := readyOn(t, set)
	for _, f := range r.Findings {
		if f.Check == "backup" {
			return f
		}
	}
	t.Fatalf("%s's verdict has no check \"backup\"", set)
	return readiness.Finding{}
}

// restoreTestRuns runs `sentry report restore-test --json` on P.
func restoreTestRuns(t *testing.T) ([]report.RestoreRun, error) {
	t.Helper()
	out, err := sentryErr("lab", "exec", "P", "--", "sentry", "report", "restore-test", "--json")
	var runs []report.RestoreRun
	if jerr := json.Unmarshal([]byte(out), &runs); jerr != nil {
		t.Fatalf("sentry report restore-test --json on P: %v (%v)\n%s", jerr, err, out)
	}
	return runs, err
}

// restoreTestInLab: with a restic repository on P (and one on S, for S's
// own backup probe), the weekly restore test reads a slice back and
// restores a sample of files; a damaged repository fails it, which both
// nodes' verdicts block on with the repository named, until a good run
// after the repair. The weekly report mailed afterwards (reportByMail)
// reports the runs.
func restoreTestInLab(t *testing.T) {
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "sh", "-c", `set -e
umask 077
head -c 24 /dev/urandom | base64 > /root/restic-password
mkdir -p /srv/office-files
cp -r /etc/nginx /etc/postfix /etc/samba /srv/office-files/
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom > /srv/office-files/scan-$i.pdf; done
export RESTIC_REPOSITORY=/srv/restic RESTIC_PASSWORD_FILE=/root/restic-password
restic init --no-cache -q
restic backup --no-cache -q /srv/office-files`)
	}
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "cat > /root/backup-restic-1.0.0.toml <<'EOF'\n"+backupRestic+"EOF")
	sentry(t, "lab", "exec", "P", "--", "sentry", "modules", "install", "/root/backup-restic-1.0.0.toml")
	waitUntil(t, "the backup probe green on both nodes", 90*time.Second, func() bool {
		st := statusNodes(t, "P")
		for _, n := range []string{"node-p", "node-s"} {
			if !strings.HasPrefix(st[n].Verify, "16/16 green") {
				return false
			}
		}
		return true
	})

	// A good run.
	start := time.Now()
	runs, err := restoreTestRuns(t)
	took := time.Since(start)
	if err != nil || len(runs) != 1 {
		t.Fatalf("restore-test on P: %v, %d runs: %+v", err, len(runs), runs)
	}
	good := runs[0]
	if good.Outcome() != "good" || good.Repo != "/srv/restic" || good.FilesRestored != 20 || good.FilesCompared != 20 || good.Snapshot == "" || good.Subset == "" {
		t.Fatalf("restore test on P: %+v", good)
	}
	figure(t, "restore test on P: snapshot %s, subset %s (%d packs read), %d files restored and compared (%d bytes) in %.1f s (the command: %s)",
		good.Snapshot, good.Subset, good.CheckedPacks, good.FilesRestored, good.CheckedBytes, good.DurationS, took.Round(10*time.Millisecond))
	waitUntil(t, "the check backup passing on P", 30*time.Second, func() bool { return backupFinding(t, "P").State == readiness.Pass })

	// Damaged: every data pack of P's repository has a byte flipped.
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", `set -e
rm -rf /root/restic-data-saved && cp -a /srv/restic/data /root/restic-data-saved
for f in /srv/restic/data/*/*; do
  chmod u+w "$f"
  size=$(stat -c %s "$f")
  printf '\377' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
done`)
	runs, err = restoreTestRuns(t)
	if err == nil || len(runs) != 1 || runs[0].Outcome() != "FAILED" {
		t.Fatalf("restore-test of the damaged repository: %v, %+v", err, runs)
	}
	t.Logf("the damaged repository: %s", runs[0].Why())
	for _, set := range []string{"P", "S"} {
		waitUntil(t, "the check backup failing on "+set+", naming the repository", 60*time.Second, func() bool {
			f := backupFinding(t, set)
			return f.State == readiness.Fail && f.Blocking() && strings.Contains(f.Reason, "node-p: the restore test of /srv/restic") && f.Fix == "sentry report restore-test"
		})
	}
	r, _ := readyOn(t, "S")
	if r.Verdict != readiness.NotReady {
		t.Errorf("S's verdict with P's restore test failed: %s", r.Verdict)
	}

	// Repaired: a good run clears it on both nodes.
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "rm -rf /srv/restic/data && mv /root/restic-data-saved /srv/restic/data")
	if runs, err = restoreTestRuns(t); err != nil || runs[0].Outcome() != "good" {
		t.Fatalf("restore-test after the repair: %v, %+v", err, runs)
	}
	for _, set := range []string{"P", "S"} {
		waitUntil(t, "the check backup passing on "+set+" again", 60*time.Second, func() bool { return backupFinding(t, set).State == readiness.Pass })
	}
	waitEvent(t, "P", report.EventRestoreTest, "restore test of /srv/restic: FAILED", 5*time.Second)
}
