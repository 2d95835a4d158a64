package synchronizer

import (
	"context"
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
