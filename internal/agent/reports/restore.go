package reports

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/restic"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// The weekly restore test (issue 16): for each restic repository a backup
// probe names, a slice of the data is read back (restic check
// --read-data-subset, a different slice each week, all of it in a year)
// and a sample of files is restored into a private temporary folder and
// compared with the snapshot (size, modification time, and content
// against restic dump). A repository locked by a running backup or prune
// is skipped and tried again later; the test takes no lock of its own, so
// a backup that starts meanwhile is never refused.
const (
	// Subsets is how many slices the data is read in: one a week.
	Subsets = 52
	// SampleFiles is how many files are restored and compared.
	SampleFiles = 20
	// MaxSampleFile is the largest file the sample takes (a snapshot of
	// only larger files gives its smallest).
	MaxSampleFile = 16 << 20
	// RestoreTimeout bounds one repository's test.
	RestoreTimeout = 2 * time.Hour
	// RetryDelay and Retries: a skipped test is tried again.
	RetryDelay = time.Hour
	Retries    = 6
	// RestoreCommand runs the test by hand.
	RestoreCommand = "sentry report restore-test"
)

// WithRestore sets where restored files go (default /var/tmp, private to
// the agent's unit) and the delay before a skipped test is tried again.
func WithRestore(tmpDir string, retry time.Duration) Option {
	return func(r *Reports) { r.tmpDir, r.retryDelay = tmpDir, retry }
}

// repos are the restic repositories this node's backup probes name.
func (r *Reports) repos() []restic.Repo {
	if r.d.Backups == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []restic.Repo
	for _, s := range r.d.Backups() {
		bp, ok := s.Params.(*verifier.BackupParams)
		if !ok || bp.ResticRepo == "" || seen[bp.ResticRepo] {
			continue
		}
		seen[bp.ResticRepo] = true
		out = append(out, restic.Repo{Bin: bp.Restic, URL: bp.ResticRepo, PasswordFile: bp.ResticPasswordFile})
	}
	return out
}

// RestoreTest tests every repository now, records each run as a
// restore-test event and returns the runs. When one was skipped (locked),
// it is tried again after the retry delay, up to Retries times, until the
// agent stops (Deps.Done).
func (r *Reports) RestoreTest(ctx context.Context) []report.RestoreRun {
	r.restoreMu.Lock()
	defer r.restoreMu.Unlock()
	runs := []report.RestoreRun{}
	skipped := false
	for _, repo := range r.repos() {
		run := r.testRepo(ctx, repo)
		runs = append(runs, run)
		skipped = skipped || run.Outcome() == "skipped"
		r.record(run)
	}
	if skipped {
		r.retryLater()
	}
	return runs
}

// record keeps the run: an event, and the repository's last outcome.
func (r *Reports) record(run report.RestoreRun) {
	ev, err := run.Event()
	if err != nil {
		r.d.Log.Warn("restore test not recorded", "repo", run.Repo, "err", err)
		return
	}
	r.d.Event(ev.Kind, run.Node, ev.Message, ev.Fields)
	if run.Outcome() == "skipped" {
		return
	}
	r.mu.Lock()
	if r.restored == nil {
		r.restored = map[string]report.RestoreRun{}
	}
	r.restored[run.Repo] = run
	r.mu.Unlock()
	r.refresh()
}

// retryLater tries a skipped test again, once at a time.
func (r *Reports) retryLater() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retrying || r.d.Done == nil {
		return
	}
	r.retrying = true
	go func() {
		defer func() {
			r.mu.Lock()
			r.retrying = false
			r.mu.Unlock()
		}()
		for i := 0; i < Retries; i++ {
			t := time.NewTimer(r.retryDelay)
			select {
			case <-r.d.Done:
				t.Stop()
				return
			case <-t.C:
			}
			ctx, cancel := context.WithCancel(context.Background())
			stop := context.AfterFunc(doneCtx(r.d.Done), cancel)
			r.restoreMu.Lock()
			again := false
			for _, repo := range r.repos() {
				run := r.testRepo(ctx, repo)
				again = again || run.Outcome() == "skipped"
				r.record(run)
			}
			r.restoreMu.Unlock()
			stop()
			cancel()
			if !again {
				return
			}
		}
	}()
}

// doneCtx is a context cancelled when done closes.
func doneCtx(done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		cancel()
	}()
	return ctx
}

// testRepo tests one repository.
func (r *Reports) testRepo(ctx context.Context, repo restic.Repo) (run report.RestoreRun) {
	ctx, cancel := context.WithTimeout(ctx, RestoreTimeout)
	defer cancel()
	start := r.now()
	run = report.RestoreRun{At: start.UTC(), Node: r.node().Self, Repo: repo.Shown(), Command: RestoreCommand}
	defer func() {
		run.DurationS = float64(r.now().Sub(start).Milliseconds()) / 1000
		r.d.Log.Info("restore test", "repo", run.Repo, "outcome", run.Outcome(), "snapshot", run.Snapshot,
			"subset", run.Subset, "restored", run.FilesRestored, "compared", run.FilesCompared, "err", run.Error, "skipped", run.Skipped)
	}()
	fail := func(err error) report.RestoreRun {
		var re *restic.Error
		if errors.As(err, &re) && re.Locked() {
			run.Skipped = "the repository was locked meanwhile (" + re.Line + "): tried again later"
		} else {
			run.Error = err.Error()
		}
		return run
	}
	locks, err := repo.Locks(ctx)
	if err != nil {
		return fail(err)
	}
	if len(locks) > 0 {
		sort.Slice(locks, func(i, j int) bool { return locks[i].Time.Before(locks[j].Time) })
		why := locks[0].String()
		if len(locks) > 1 {
			why += fmt.Sprintf(" and %d more", len(locks)-1)
		}
		run.Skipped = "the repository is locked (" + why + "), a backup or prune is running: tried again later"
		if r.now().Sub(locks[0].Time) > 24*time.Hour {
			run.Skipped += "; a lock older than a day may be stale: `restic unlock` removes stale locks"
		}
		return run
	}
	snap, ok, err := repo.Newest(ctx)
	if err != nil {
		return fail(err)
	}
	if !ok {
		run.Error = "the repository has no snapshot"
		return run
	}
	run.Snapshot = snap.ShortID
	k := subsetOf(store.WeekKey(start))
	run.Subset = fmt.Sprintf("%d/%d", k, Subsets)
	packs, err := repo.CheckSubset(ctx, k, Subsets)
	run.CheckedPacks = packs
	if err != nil {
		return fail(err)
	}
	files, err := repo.Files(ctx, snap.ID)
	if err != nil {
		return fail(err)
	}
	sample := pickSample(files, rand.New(rand.NewPCG(seedOf(repo.URL, store.WeekKey(start)), 0x5e47)))
	if len(sample) == 0 {
		run.Error = "snapshot " + snap.ShortID + " has no file to restore"
		return run
	}
	dir := r.tmpDir
	if dir == "" {
		dir = "/var/tmp"
	}
	tmp, err := os.MkdirTemp(dir, "sentry-restore-*") // 0700: restored files may be secret
	if err != nil {
		run.Error = "no temporary folder for the restore: " + err.Error()
		return run
	}
	defer os.RemoveAll(tmp)
	paths := make([]string, len(sample))
	for i, f := range sample {
		paths[i] = f.Path
	}
	if err := repo.Restore(ctx, snap.ID, tmp, paths); err != nil {
		return fail(err)
	}
	for _, f := range sample {
		got := filepath.Join(tmp, filepath.FromSlash(f.Path))
		st, err := os.Lstat(got)
		if err != nil || !st.Mode().IsRegular() {
			run.Mismatches = append(run.Mismatches, f.Path+": not restored")
			continue
		}
		run.FilesRestored++
		run.FilesCompared++
		switch {
		case st.Size() != f.Size:
			run.Mismatches = append(run.Mismatches, fmt.Sprintf("%s: %d bytes restored, the snapshot has %d", f.Path, st.Size(), f.Size))
			continue
		case !f.MTime.IsZero() && st.ModTime().Unix() != f.MTime.Unix():
			run.Mismatches = append(run.Mismatches, fmt.Sprintf("%s: restored with time %s, the snapshot has %s", f.Path,
				st.ModTime().UTC().Format(time.RFC3339), f.MTime.UTC().Format(time.RFC3339)))
			continue
		}
		want := sha256.New()
		if err := repo.Dump(ctx, snap.ID, f.Path, want); err != nil {
			return fail(err)
		}
		if sum, err := fileSum(got); err != nil || string(sum) != string(want.Sum(nil)) {
			run.Mismatches = append(run.Mismatches, f.Path+": content differs from the snapshot")
		}
		run.CheckedBytes += f.Size
	}
	return run
}

// subsetOf is the week's slice of the data (1..Subsets).
func subsetOf(week string) int {
	start, err := store.WeekStartOf(week)
	if err != nil {
		return 1
	}
	_, w := start.ISOWeek()
	return (w-1)%Subsets + 1
}

// seedOf seeds the week's sample: another sample each week and repository.
func seedOf(repo, week string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, repo+"\x00"+week)
	return h.Sum64()
}

// pickSample takes up to SampleFiles files of at most MaxSampleFile (the
// smallest file when none is), leaving out paths restic's --include would
// read as a pattern.
func pickSample(files []restic.File, rnd *rand.Rand) []restic.File {
	var fit []restic.File
	var smallest *restic.File
	for i, f := range files {
		if strings.ContainsAny(f.Path, "*?[\\") {
			continue
		}
		if f.Size <= MaxSampleFile {
			fit = append(fit, f)
		} else if smallest == nil || f.Size < smallest.Size {
			smallest = &files[i]
		}
	}
	if len(fit) == 0 && smallest != nil {
		return []restic.File{*smallest}
	}
	rnd.Shuffle(len(fit), func(i, j int) { fit[i], fit[j] = fit[j], fit[i] })
	if len(fit) > SampleFiles {
		fit = fit[:SampleFiles]
	}
	sort.Slice(fit, func(i, j int) bool { return fit[i].Path < fit[j].Path })
	return fit
}

func fileSum(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// LastRestore is the failed last restore test of a repository still
// configured (nil: none failed; the newest good or failed run of each
// repository counts, a skipped one does not), for the node's status and
// the readiness verdict. The store is read once.
func (r *Reports) LastRestore() *peer.Restore {
	configured := map[string]bool{}
	for _, repo := range r.repos() {
		configured[repo.Shown()] = true
	}
	if len(configured) == 0 {
		return nil
	}
	// The deps before the lock: FillStatus takes r.mu under the agent's
	// lock, and the cluster's state takes the agent's lock.
	self := r.node().Self
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restored == nil {
		r.restored = map[string]report.RestoreRun{}
		evs, err := r.d.Store().History().Events(report.EventRestoreTest)
		if err != nil {
			r.d.Log.Warn("restore tests not read", "err", err)
		}
		for _, e := range evs {
			run, err := report.RestoreOf(e)
			if err != nil || run.Outcome() == "skipped" || (self != "" && run.Node != self) {
				continue
			}
			r.restored[run.Repo] = run
		}
	}
	var newest, failed *report.RestoreRun
	for repo, run := range r.restored {
		if !configured[repo] {
			continue
		}
		if newest == nil || run.At.After(newest.At) {
			newest = &run
		}
		if run.Outcome() == "FAILED" && (failed == nil || run.At.After(failed.At)) {
			failed = &run
		}
	}
	pick := failed
	if pick == nil {
		pick = newest
	}
	if pick == nil {
		return nil
	}
	return &peer.Restore{At: pick.At, Repo: pick.Repo, Snapshot: pick.Snapshot, Err: cut(pick.Why(), 1024)}
}

// cut bounds a message for the node's status.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// FillStatus puts the last restore test into the node's status. It is
// called under the agent's lock: it reads what refresh last found, and
// starts a refresh (which reads the probes and the store) in the
// background when that is older than a minute.
func (r *Reports) FillStatus(s *peer.NodeStatus) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Restore = r.status
	if !r.refreshing && time.Since(r.statusAt) > time.Minute {
		r.refreshing = true
		go r.refresh()
	}
}

// refresh reads the last restore test again for the node's status.
func (r *Reports) refresh() {
	lr := r.LastRestore()
	r.mu.Lock()
	r.status, r.statusAt, r.refreshing = lr, time.Now(), false
	r.mu.Unlock()
}
