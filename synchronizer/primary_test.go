package synchronizer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The watcher commits a change within the debounce, coalesces quick edits,
// and picks up files written into a new directory right after it appears.
func TestPrimaryWatches(t *testing.T) {
	root, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	var mu sync.Mutex
	var commits []*CommitResult
	p := &Primary{Repo: r, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Debounce: 100 * time.Millisecond,
		Rescan: time.Hour, OnCommit: func(c *CommitResult) { mu.Lock(); commits = append(commits, c); mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(commits) }
	wait := func(n int) {
		t.Helper()
		for i := 0; i < 100 && count() < n; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if count() < n {
			t.Fatalf("%d commits, want %d", count(), n)
		}
	}
	wait(1) // the first snapshot
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	for i := 0; i < 5; i++ { // quick edits: one commit
		os.WriteFile(conf, []byte{byte('a' + i)}, 0o644)
		time.Sleep(10 * time.Millisecond)
	}
	wait(2)
	time.Sleep(300 * time.Millisecond)
	if count() != 2 {
		t.Errorf("5 quick edits made %d commits, want 1", count()-1)
	}
	// A new directory, files written into it at once.
	nd := filepath.Join(root, "etc/nginx/new.d")
	os.Mkdir(nd, 0o755)
	for _, n := range []string{"a.conf", "b.conf", "c.conf"} {
		os.WriteFile(filepath.Join(nd, n), []byte(n), 0o644)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		s, _ := ReadSnapshot(r.Git().Storer, r.Head())
		if len(s.Blobs) > 0 && s.Blobs[filepath.Join(nd, "c.conf")] != [20]byte{} {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("files of a new directory were not committed")
}

// A thousand edits in two seconds make a handful of commits, and a lone edit
// after them is committed after the short quiet window (its latency is
// logged, not asserted: a loaded machine is slower, not wrong).
func TestPrimaryBurst(t *testing.T) {
	root, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	var mu sync.Mutex
	var commits []time.Time
	p := &Primary{Repo: r, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Debounce: time.Second,
		Rescan: time.Hour, OnCommit: func(c *CommitResult) { mu.Lock(); commits = append(commits, time.Now()); mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(commits) }
	for i := 0; i < 250 && count() < 1; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	start := time.Now()
	for i := 0; i < 1000; i++ {
		os.WriteFile(conf, []byte(fmt.Sprintf("worker_processes %d;\n", i)), 0o644)
		time.Sleep(2 * time.Millisecond)
	}
	burst := time.Since(start)
	time.Sleep(1500 * time.Millisecond) // the widest window, and the commit
	n := count() - 1
	if n < 1 || n > 5 {
		t.Errorf("1000 edits in %s made %d commits, want 1 to 5", burst.Round(time.Millisecond), n)
	}
	s, _ := ReadSnapshot(r.Git().Storer, r.Head())
	if b, _ := readBlob(r.Git().Storer, s.Blobs[conf]); string(b) != "worker_processes 999;\n" {
		t.Errorf("the last commit holds %q, not the last edit", b)
	}
	before := count()
	edit := time.Now()
	os.WriteFile(conf, []byte("worker_processes auto;\n"), 0o644)
	for i := 0; i < 250 && count() == before; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if count() == before {
		t.Fatal("a lone edit was not committed")
	}
	mu.Lock()
	t.Logf("1000 edits in %s: %d commits; a lone edit committed %s after it (quiet window %s)",
		burst.Round(time.Millisecond), n, commits[len(commits)-1].Sub(edit).Round(time.Millisecond), MinQuiet)
	mu.Unlock()
}

// The folder watched for a tracked single file reports its other entries
// too (the agent's store beside /var/lib/sentry/modules): their writes are
// no change, and neither hold back nor widen the window of a real edit
// made among them.
func TestPrimaryIgnoresUntrackedSiblings(t *testing.T) {
	root, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	var mu sync.Mutex
	var commits []time.Time
	p := &Primary{Repo: r, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Debounce: time.Second,
		Rescan: time.Hour, OnCommit: func(c *CommitResult) { mu.Lock(); commits = append(commits, time.Now()); mu.Unlock() }}
	for path, want := range map[string]bool{
		filepath.Join(root, "etc/ssh/sshd_config"):      true,
		filepath.Join(root, "etc/ssh"):                  true, // on the way to a root
		filepath.Join(root, "etc/nginx/conf.d/x.conf"):  true,
		filepath.Join(root, "etc/ssh/other"):            false,
		filepath.Join(root, "etc/nginx-other/x.conf"):   false,
		filepath.Join(root, "etc/ssh/sshd_config.dpkg"): false,
	} {
		if got := p.concerns(path); got != want {
			t.Errorf("concerns(%s) = %v, want %v", path, got, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(commits) }
	for i := 0; i < 250 && count() < 1; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	// A sibling of sshd_config written every 60 ms for 2 s (each write
	// would have restarted the window, and widened it), and one real
	// edit early in that.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(60 * time.Millisecond):
				os.WriteFile(filepath.Join(root, "etc/ssh/other"), []byte(fmt.Sprint(i)), 0o644)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	edit := time.Now()
	os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config"), []byte("PermitRootLogin prohibit-password\n"), 0o644)
	for count() < 2 && time.Since(edit) < 1800*time.Millisecond {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	if count() < 2 {
		t.Fatal("the edit was not committed while the sibling kept being written")
	}
	mu.Lock()
	t.Logf("the edit committed %s after it, beside a sibling written every 60 ms", commits[1].Sub(edit).Round(time.Millisecond))
	mu.Unlock()
}
