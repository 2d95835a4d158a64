package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/synchronizer"
)

// flakyReloader fails its first n reloads with err.
type flakyReloader struct {
	mu    sync.Mutex
	n     int
	err   error
	calls int
}

func (f *flakyReloader) Reload(context.Context, []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.n {
		return f.err
	}
	return nil
}

func (f *flakyReloader) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// pairNodes starts a primary and a secondary (with extra options) and
// pairs them.
func pairNodes(t *testing.T, sOpts ...Option) (p, s *testNode) {
	t.Helper()
	ctx := context.Background()
	p = startNode(t, "node-p")
	s = startNode(t, "node-s", sOpts...)
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatalf("join: %v", err)
	}
	return p, s
}

func secondaryView(t *testing.T, n *testNode) NodeView {
	t.Helper()
	st, err := n.c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.Nodes {
		if v.Role == "secondary" {
			return v
		}
	}
	return NodeView{}
}

// Defect 2: a commit rolled back for a reason that may clear by itself is
// tried again (status says when), and applies once the cause is gone; a
// refusal by the service is not retried.
func TestTransientFailureIsRetried(t *testing.T) {
	rl := &flakyReloader{n: 2, err: &synchronizer.TransientError{Err: errors.New("nginx.service still reloading 20s after the reload")}}
	p, s := pairNodes(t, WithReloader(rl), WithRetryBackoff(300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond))
	waitFor(t, "the first apply", func() bool { v := secondaryView(t, s); return v.ConfigApplied != "" || v.ConfigFailed != "" })
	// The first apply and its rollback used the two failures; the retry
	// (the third reload) goes through.
	for i := 0; ; i++ {
		v := secondaryView(t, s)
		if v.ConfigApplied != "" && v.ConfigFailed == "" && v.ConfigError == "" && v.ConfigRetry == "" {
			break
		}
		if i == 200 {
			t.Fatalf("the retry did not apply: %+v, %d reloads\nlogs:\n%s", v, rl.count(), s.logs)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if rl.count() < 3 {
		t.Fatalf("%d reloads: no retry happened", rl.count())
	}
	evs, _ := s.a.store.Events(0, 200)
	var failed string
	for _, e := range evs {
		if e.Kind == "config-apply-failed" {
			failed = e.Message
		}
	}
	if !strings.Contains(failed, "still reloading") || !strings.Contains(failed, "trying again at") || !strings.Contains(failed, "(try 2 of 4)") {
		t.Errorf("the failure event does not say it is retried: %q", failed)
	}

	// A refusal is not retried: it waits for a newer commit.
	rl.mu.Lock()
	rl.n, rl.calls, rl.err = 1, 0, errors.New("nginx.service refused its new configuration")
	rl.mu.Unlock()
	os.WriteFile(filepath.Join(p.dir, "etc", "nginx", "x.conf"), []byte("# changed\n"), 0o644)
	waitFor(t, "the refused commit", func() bool {
		v := secondaryView(t, s)
		return v.ConfigFailed != "" && strings.Contains(v.ConfigError, "refused")
	})
	time.Sleep(time.Second) // three backoffs
	if v := secondaryView(t, s); v.ConfigRetry != "" || v.ConfigFailed == "" || rl.count() != 2 {
		t.Errorf("a refusal was retried: %+v, %d reloads", v, rl.count())
	}
}
