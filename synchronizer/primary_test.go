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
