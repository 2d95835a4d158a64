package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 20, finding 10: results under probe names the peer sent once (or
// of a probe removed since) were kept for ever by the retention, which
// keeps the newest MaxResults of every probe. A probe with no result
// newer than MaxAge goes.
func TestPruneDropsProbesOlderThanMaxAge(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := t0.Add(100 * 24 * time.Hour)
	for i := 0; i < 3; i++ {
		for _, r := range []StoredResult{result("node-s", "junk", i), result("node-s", "web", i), result("node-p", "gone", i)} {
			if err := s.PutResult(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	fresh := result("node-s", "web", 0)
	fresh.Start = now.Add(-time.Hour)
	if err := s.PutResult(fresh); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(now, Retention{MaxAge: 90 * 24 * time.Hour, MaxResults: 10})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestResults("node-s")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["junk"]; ok || len(got) != 1 {
		t.Errorf("probes of node-s after the prune: %v (deleted %d), want only web", keysOf(got), n)
	}
	// A probe with a recent result keeps its older ones (MaxResults rules).
	if rs, _ := s.Results("node-s", "web", 0); len(rs) != 4 {
		t.Errorf("web kept %d results, want 4", len(rs))
	}
	if got, _ := s.LatestResults("node-p"); len(got) != 0 {
		t.Errorf("node-p's old probe kept: %v", keysOf(got))
	}
}

func keysOf(m map[string]StoredResult) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// CheckToken says what UseToken would and changes nothing: a join checks
// its token, then the rest of the request, and spends the token last.
func TestCheckTokenReadsOnly(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := HashSecret([]byte("secret-0123456789"))
	if err := s.PutToken(Token{Hash: h, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(HashSecret([]byte("other")), t0); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := s.CheckToken(h, t0.Add(2*time.Hour)); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired: %v", err)
	}
	for i := 0; i < 2; i++ {
		if tok, err := s.CheckToken(h, t0); err != nil || !tok.Used.IsZero() {
			t.Fatalf("check %d: %+v %v", i, tok, err)
		}
	}
	writes := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	before := writes()
	s.CheckToken(h, t0)
	s.CheckToken(HashSecret([]byte("other")), t0)
	if after := writes(); after != before {
		t.Errorf("CheckToken wrote %d times", after-before)
	}
	if _, err := s.UseToken(h, t0, "node-s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(h, t0); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("used: %v", err)
	}
}

func TestProbes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{"web", "mail", "web"} {
		s.PutResult(result("node-s", p, 0))
	}
	if got, err := s.Probes("node-s"); err != nil || strings.Join(got, ",") != "mail,web" {
		t.Errorf("probes %v %v", got, err)
	}
	if got, err := s.Probes("node-x"); err != nil || len(got) != 0 {
		t.Errorf("probes of an unknown node %v %v", got, err)
	}
}
