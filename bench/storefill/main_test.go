package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// TestFill: a store with a few rounds of the agent's results gets n results
// of each probe before those, the agent's own still the newest, and an hourly
// rollup for each hour of -days; a missing store is not created, an empty
// one is refused.
func TestFill(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	pairs := [][2]string{{"node-p", "mail"}, {"node-p", "web"}, {"node-s", "mail"}}
	for i := 3; i >= 1; i-- {
		for _, p := range pairs {
			if err := s.PutResult(store.StoredResult{Node: p[0], Probe: p[1], Kind: p[1], Start: now.Add(-time.Duration(i) * 10 * time.Second), DurationMS: int64(i), OK: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if err := run(path, 50, 10*time.Second, 2, "node-p,node-s"); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range pairs {
		rs, err := s.Results(p[0], p[1], 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 53 {
			t.Errorf("%s/%s: %d results, want 50 and the agent's 3", p[0], p[1], len(rs))
		}
		if len(rs) > 0 && (!rs[0].Start.Equal(now.Add(-10*time.Second)) || rs[0].DurationMS != 1) {
			t.Errorf("%s/%s: newest result %+v, want the agent's own (started %s)", p[0], p[1], rs[0], now.Add(-10*time.Second))
		}
	}
	// The agent's prune at its start finds nothing more to drop.
	if n, err := s.Prune(time.Now(), store.Retention{MaxResults: 50}); err != nil || n != 0 {
		t.Errorf("the agent's prune after the fill dropped %d, %v; want 0", n, err)
	}
	hours, err := s.History().Hourly(now.Add(-3*24*time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, h := range hours {
		per[h.Node+"/"+h.Probe]++
	}
	for _, p := range pairs {
		if n := per[p[0]+"/"+p[1]]; n < 48 {
			t.Errorf("%s/%s: %d hourly rollups, want at least 48 (2 days)", p[0], p[1], n)
		}
	}

	missing := filepath.Join(dir, "none.db")
	if err := run(missing, 5, time.Second, 0, "node-p"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing store: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a missing store was created: %v", err)
	}
	empty := filepath.Join(dir, "empty.db")
	es, err := store.Open(empty, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	es.Close()
	if err := run(empty, 5, time.Second, 0, "node-p"); err == nil || !strings.Contains(err.Error(), "holds no results") {
		t.Errorf("a store without results: %v", err)
	}
	if err := run(path, 0, time.Second, 0, "node-p"); err == nil {
		t.Error("-n 0: no error")
	}
}
