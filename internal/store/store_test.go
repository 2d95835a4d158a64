package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// t0 is a fixed instant the tests count from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func seqsOf(evs []Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestOpenCreatesFile0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check on a new file: %v", err)
	}
}

func TestOpenRefusesNonBoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a text file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestEventRoundTripAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []Event
	for i := 0; i < 10; i++ {
		e := Event{
			Seq:     999, // ignored by AppendEvent
			Time:    t0.Add(time.Duration(i) * time.Minute),
			Kind:    "join",
			Node:    fmt.Sprintf("node-%d", i),
			Message: fmt.Sprintf("event number %d", i),
		}
		if i%2 == 0 {
			e.Fields = map[string]string{"i": fmt.Sprint(i), "parity": "even"}
		}
		seq, err := s.AppendEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i+1) {
			t.Fatalf("AppendEvent #%d returned seq %d, want %d", i, seq, i+1)
		}
		e.Seq = seq
		want = append(want, e)
	}
	// A zero Time is filled in.
	before := time.Now()
	seq, err := s.AppendEvent(Event{Kind: "note", Message: "no time given"})
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastEvents(1)
	if err != nil || len(last) != 1 || last[0].Seq != seq {
		t.Fatalf("LastEvents(1) = %v, %v", last, err)
	}
	if last[0].Time.Before(before.Add(-time.Second)) || last[0].Time.After(time.Now().Add(time.Second)) {
		t.Errorf("zero Time was stored as %v, want about now", last[0].Time)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.Events(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events after reopen, want %d", len(got), len(want))
	}
	for i := range want {
		if !eventsEqual(got[i], want[i]) {
			t.Errorf("event %d after reopen:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Sequence numbers go on after a reopen.
	seq, err = s.AppendEvent(Event{Time: t0, Kind: "after-reopen", Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if seq != 12 {
		t.Errorf("first seq after reopen = %d, want 12", seq)
	}
}

func eventsEqual(a, b Event) bool {
	if a.Seq != b.Seq || !a.Time.Equal(b.Time) || a.Kind != b.Kind || a.Node != b.Node || a.Message != b.Message {
		return false
	}
	if len(a.Fields) == 0 && len(b.Fields) == 0 {
		return true
	}
	return reflect.DeepEqual(a.Fields, b.Fields)
}

func TestEventsAndLastEvents(t *testing.T) {
	s := openTemp(t)
	for i := 0; i < 20; i++ {
		if _, err := s.AppendEvent(Event{Time: t0, Kind: "k", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	events := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 0, seqRange(1, 20)},
		{0, -1, seqRange(1, 20)},
		{0, 5, seqRange(1, 5)},
		{5, 3, seqRange(6, 8)},
		{17, 10, seqRange(18, 20)},
		{19, 0, []uint64{20}},
		{20, 0, []uint64{}},
		{1000, 0, []uint64{}},
		{^uint64(0), 0, []uint64{}},
	}
	for _, c := range events {
		t.Run(fmt.Sprintf("Events(%d,%d)", c.after, c.limit), func(t *testing.T) {
			got, err := s.Events(c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if g := seqsOf(got); !reflect.DeepEqual(g, c.want) {
				t.Errorf("seqs %v, want %v", g, c.want)
			}
			for _, e := range got {
				if e.Message != fmt.Sprint(e.Seq-1) {
					t.Errorf("event %d has message %q", e.Seq, e.Message)
				}
			}
		})
	}
	last := []struct {
		n    int
		want []uint64
	}{
		{0, []uint64{}},
		{-3, []uint64{}},
		{1, []uint64{20}},
		{4, seqRange(17, 20)},
		{20, seqRange(1, 20)},
		{50, seqRange(1, 20)},
	}
	for _, c := range last {
		t.Run(fmt.Sprintf("LastEvents(%d)", c.n), func(t *testing.T) {
			got, err := s.LastEvents(c.n)
			if err != nil {
				t.Fatal(err)
			}
			if g := seqsOf(got); !reflect.DeepEqual(g, c.want) {
				t.Errorf("seqs %v, want %v", g, c.want)
			}
		})
	}
}

func TestEmptyStore(t *testing.T) {
	s := openTemp(t)
	if evs, err := s.Events(0, 0); err != nil || len(evs) != 0 {
		t.Errorf("Events on empty store = %v, %v", evs, err)
	}
	if evs, err := s.LastEvents(5); err != nil || len(evs) != 0 {
		t.Errorf("LastEvents on empty store = %v, %v", evs, err)
	}
	if toks, err := s.Tokens(); err != nil || len(toks) != 0 {
		t.Errorf("Tokens on empty store = %v, %v", toks, err)
	}
	if _, ok, err := s.Peer("nobody"); err != nil || ok {
		t.Errorf("Peer on empty store = %v, %v", ok, err)
	}
	if n, err := s.Prune(t0, Retention{MaxAge: time.Hour, MaxEvents: 1, TokenAge: time.Hour}); err != nil || n != 0 {
		t.Errorf("Prune on empty store = %d, %v", n, err)
	}
}

func TestPeerRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	peers := []PeerRecord{
		{Name: "alpha", LastContact: t0, Address: "10.0.0.1:7946", Status: json.RawMessage(`{"role":"primary","healthy":true}`)},
		{Name: "beta", LastContact: t0.Add(time.Second)},
		{Name: "gamma", LastContact: t0.Add(2 * time.Second), Status: json.RawMessage(`[1,2,3]`)},
	}
	for _, p := range peers {
		if err := s.PutPeer(p); err != nil {
			t.Fatalf("PutPeer(%s): %v", p.Name, err)
		}
	}
	// A later record replaces the earlier one.
	peers[1] = PeerRecord{Name: "beta", LastContact: t0.Add(time.Hour), Address: "10.0.0.2:7946", Status: json.RawMessage(`"standby"`)}
	if err := s.PutPeer(peers[1]); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		p    PeerRecord
	}{
		{"empty name", PeerRecord{LastContact: t0}},
		{"invalid status JSON", PeerRecord{Name: "delta", Status: json.RawMessage(`{not json`)}},
	}
	for _, c := range bad {
		if err := s.PutPeer(c.p); err == nil {
			t.Errorf("PutPeer with %s succeeded", c.name)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range peers {
		got, ok, err := s.Peer(want.Name)
		if err != nil || !ok {
			t.Fatalf("Peer(%s) = %v, %v", want.Name, ok, err)
		}
		if got.Name != want.Name || !got.LastContact.Equal(want.LastContact) || got.Address != want.Address || string(got.Status) != string(want.Status) {
			t.Errorf("Peer(%s):\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
	for _, name := range []string{"delta", "", "ALPHA"} {
		if _, ok, err := s.Peer(name); err != nil || ok {
			t.Errorf("Peer(%q) = %v, %v; want not found", name, ok, err)
		}
	}
}

func newSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// Secrets are handed to people as text.
	return []byte(hex.EncodeToString(b))
}

func TestHashSecret(t *testing.T) {
	// sha256("abc"), from FIPS 180-2.
	if got, want := HashSecret([]byte("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashSecret(abc) = %s, want %s", got, want)
	}
	if HashSecret([]byte("a")) == HashSecret([]byte("b")) {
		t.Error("different secrets hash alike")
	}
}

func TestTokenRoundTripAndValidation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []Token
	for i := 0; i < 3; i++ {
		tok := Token{Hash: HashSecret(newSecret(t)), Created: t0.Add(time.Duration(2-i) * time.Minute), Expires: t0.Add(time.Hour)}
		if err := s.PutToken(tok); err != nil {
			t.Fatal(err)
		}
		want = append([]Token{tok}, want...) // Tokens sorts by Created
	}
	secret := newSecret(t)
	bad := []struct {
		name string
		tok  Token
	}{
		{"the secret instead of its hash", Token{Hash: string(secret), Created: t0, Expires: t0.Add(time.Hour)}},
		{"uppercase hash", Token{Hash: strings.ToUpper(HashSecret(secret)), Created: t0, Expires: t0.Add(time.Hour)}},
		{"short hash", Token{Hash: HashSecret(secret)[:40], Created: t0, Expires: t0.Add(time.Hour)}},
		{"no expiry", Token{Hash: HashSecret(secret), Created: t0}},
	}
	for _, c := range bad {
		if err := s.PutToken(c.tok); err == nil {
			t.Errorf("PutToken with %s succeeded", c.name)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Tokens() returned %d tokens, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Hash != w.Hash || !g.Created.Equal(w.Created) || !g.Expires.Equal(w.Expires) || !g.Used.IsZero() || g.UsedBy != "" {
			t.Errorf("token %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestUseToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fresh, expired, used := newSecret(t), newSecret(t), newSecret(t)
	for _, tok := range []Token{
		{Hash: HashSecret(fresh), Created: t0, Expires: t0.Add(time.Hour)},
		{Hash: HashSecret(expired), Created: t0.Add(-2 * time.Hour), Expires: t0.Add(-time.Hour)},
		{Hash: HashSecret(used), Created: t0, Expires: t0.Add(time.Hour)},
	} {
		if err := s.PutToken(tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UseToken(HashSecret(used), t0.Add(time.Minute), "node-x"); err != nil {
		t.Fatalf("first use: %v", err)
	}

	cases := []struct {
		name    string
		hash    string
		now     time.Time
		wantErr error
	}{
		{"unknown", HashSecret([]byte("never issued")), t0, ErrTokenUnknown},
		{"the secret itself is not a key", string(fresh), t0, ErrTokenUnknown},
		{"expired", HashSecret(expired), t0, ErrTokenExpired},
		{"used before", HashSecret(used), t0.Add(2 * time.Minute), ErrTokenUsed},
		{"fresh, at its expiry instant", HashSecret(fresh), t0.Add(time.Hour), nil},
		{"fresh, second use", HashSecret(fresh), t0.Add(time.Hour), ErrTokenUsed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.UseToken(c.hash, c.now, "node-b")
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				for _, other := range []error{ErrTokenUnknown, ErrTokenExpired, ErrTokenUsed} {
					if other != c.wantErr && errors.Is(err, other) {
						t.Errorf("err %v also matches %v", err, other)
					}
				}
				if got != (Token{}) {
					t.Errorf("failed UseToken returned %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Used.Equal(c.now) || got.UsedBy != "node-b" || got.Hash != c.hash {
				t.Errorf("UseToken returned %+v, want Used=%v UsedBy=node-b", got, c.now)
			}
		})
	}

	// The stored tokens show the use, and an expiry past the check is still
	// reported as "used" first.
	toks, err := s.Tokens()
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[string]Token{}
	for _, tok := range toks {
		byHash[tok.Hash] = tok
	}
	if tok := byHash[HashSecret(fresh)]; !tok.Used.Equal(t0.Add(time.Hour)) || tok.UsedBy != "node-b" {
		t.Errorf("stored fresh token %+v not marked used by node-b", tok)
	}
	if tok := byHash[HashSecret(used)]; !tok.Used.Equal(t0.Add(time.Minute)) || tok.UsedBy != "node-x" {
		t.Errorf("second use changed the used token: %+v", tok)
	}
	if tok := byHash[HashSecret(expired)]; !tok.Used.IsZero() {
		t.Errorf("expired token was marked used: %+v", tok)
	}
	if _, err := s.UseToken(HashSecret(used), t0.Add(48*time.Hour), "late"); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("used and expired token: err = %v, want ErrTokenUsed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The secrets never reach the file, in any form a person would hold.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{fresh, expired, used} {
		raws, _ := hex.DecodeString(string(secret))
		if bytes.Contains(raw, secret) || bytes.Contains(raw, raws) {
			t.Errorf("secret %s found in the store file", secret)
		}
		if !bytes.Contains(raw, []byte(HashSecret(secret))) {
			t.Errorf("hash of secret %s not in the store file", secret)
		}
	}
}

func TestUseTokenConcurrentOnlyOnce(t *testing.T) {
	s := openTemp(t)
	h := HashSecret(newSecret(t))
	if err := s.PutToken(Token{Hash: h, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.UseToken(h, t0, fmt.Sprintf("node-%d", i))
		}()
	}
	wg.Wait()
	ok, used := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrTokenUsed):
			used++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 || used != n-1 {
		t.Errorf("%d uses succeeded and %d saw ErrTokenUsed; want 1 and %d", ok, used, n-1)
	}
}

func TestPruneEvents(t *testing.T) {
	// Events 1..10 at t0 + seq minutes; event 11 is out of time order, older
	// than all the others.
	build := func(t *testing.T) *Store {
		s := openTemp(t)
		for i := 1; i <= 10; i++ {
			if _, err := s.AppendEvent(Event{Time: t0.Add(time.Duration(i) * time.Minute), Kind: "k", Message: "m"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.AppendEvent(Event{Time: t0, Kind: "late", Message: "old, appended late"}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := t0.Add(10 * time.Minute)
	cases := []struct {
		name        string
		r           Retention
		wantDeleted int
		want        []uint64
	}{
		{"no limits", Retention{}, 0, seqRange(1, 11)},
		{"age", Retention{MaxAge: 5 * time.Minute}, 5, seqRange(5, 10)},
		{"age keeps the cutoff instant", Retention{MaxAge: 10 * time.Minute}, 0, seqRange(1, 11)},
		{"count", Retention{MaxEvents: 3}, 8, seqRange(9, 11)},
		{"count above size", Retention{MaxEvents: 100}, 0, seqRange(1, 11)},
		{"age then count", Retention{MaxAge: 5 * time.Minute, MaxEvents: 2}, 9, seqRange(9, 10)},
		{"count looser than age", Retention{MaxAge: 2 * time.Minute, MaxEvents: 5}, 8, seqRange(8, 10)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := build(t)
			n, err := s.Prune(now, c.r)
			if err != nil {
				t.Fatal(err)
			}
			if n != c.wantDeleted {
				t.Errorf("Prune deleted %d, want %d", n, c.wantDeleted)
			}
			got, err := s.Events(0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if g := seqsOf(got); !reflect.DeepEqual(g, c.want) {
				t.Errorf("left %v, want %v", g, c.want)
			}
			// Pruned sequence numbers are not given out again.
			seq, err := s.AppendEvent(Event{Time: now, Kind: "k", Message: "after prune"})
			if err != nil {
				t.Fatal(err)
			}
			if seq != 12 {
				t.Errorf("seq after prune = %d, want 12", seq)
			}
			if err := s.Check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPruneTokens(t *testing.T) {
	now := t0.Add(48 * time.Hour)
	type tok struct {
		name    string
		expires time.Time
		used    time.Time
	}
	toks := []tok{
		{"live", now.Add(time.Hour), time.Time{}},
		{"live-long-ago-created", now.Add(time.Minute), time.Time{}},
		{"expired-recently", now.Add(-time.Hour), time.Time{}},
		{"expired-long-ago", now.Add(-30 * time.Hour), time.Time{}},
		{"used-recently", now.Add(time.Hour), now.Add(-time.Hour)},
		{"used-long-ago", now.Add(time.Hour), now.Add(-30 * time.Hour)},
		{"used-long-ago-expired-recently", now.Add(-time.Hour), now.Add(-30 * time.Hour)},
	}
	cases := []struct {
		age  time.Duration
		kept []string
	}{
		{0, []string{"live", "live-long-ago-created", "expired-recently", "expired-long-ago", "used-recently", "used-long-ago", "used-long-ago-expired-recently"}},
		{24 * time.Hour, []string{"live", "live-long-ago-created", "expired-recently", "used-recently"}},
		{time.Minute, []string{"live", "live-long-ago-created"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("TokenAge=%s", c.age), func(t *testing.T) {
			s := openTemp(t)
			names := map[string]string{}
			for i, tk := range toks {
				h := HashSecret([]byte(tk.name))
				names[h] = tk.name
				err := s.PutToken(Token{Hash: h, Created: t0.Add(time.Duration(i) * time.Second), Expires: tk.expires, Used: tk.used, UsedBy: "x"})
				if err != nil {
					t.Fatal(err)
				}
			}
			// Events are left alone by a token-only retention.
			if _, err := s.AppendEvent(Event{Time: t0, Kind: "k", Message: "m"}); err != nil {
				t.Fatal(err)
			}
			n, err := s.Prune(now, Retention{TokenAge: c.age})
			if err != nil {
				t.Fatal(err)
			}
			if want := len(toks) - len(c.kept); n != want {
				t.Errorf("Prune deleted %d, want %d", n, want)
			}
			left, err := s.Tokens()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tk := range left {
				got = append(got, names[tk.Hash])
			}
			if !reflect.DeepEqual(got, c.kept) {
				t.Errorf("kept %v, want %v", got, c.kept)
			}
			if evs, err := s.Events(0, 0); err != nil || len(evs) != 1 {
				t.Errorf("events after token prune: %v, %v", evs, err)
			}
		})
	}
}

func TestSchemaNewerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(Event{Time: t0, Kind: "k", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The recorded version is SchemaVersion.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := fmt.Sprint(SchemaVersion + 1)
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("no meta bucket")
		}
		if got := string(meta.Get(keySchema)); got != fmt.Sprint(SchemaVersion) {
			return fmt.Errorf("recorded schema version %q, want %d", got, SchemaVersion)
		}
		return meta.Put(keySchema, []byte(newer))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a file with a newer schema succeeded")
	}
	msg := err.Error()
	for _, want := range []string{path, "schema version " + newer, fmt.Sprintf("schema version %d", SchemaVersion)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("refused Open changed the file")
	}
	// The lock was released: the file can be opened again by bbolt.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked after refused Open: %v", err)
	}
	db.Close()
}

func TestLockHeldBySecondOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s2, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	waited := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("error %q does not name the path and the other process", err)
	}
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Errorf("error %v does not wrap bbolt's ErrTimeout", err)
	}
	if waited < 50*time.Millisecond || waited > time.Second {
		t.Errorf("second Open gave up after %v, want about 100ms", waited)
	}
	// The first store still works, and once closed the file opens again.
	if _, err := s.AppendEvent(Event{Time: t0, Kind: "k", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err = Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer s2.Close()
	if evs, err := s2.Events(0, 0); err != nil || len(evs) != 1 {
		t.Errorf("Events after reopen = %v, %v", evs, err)
	}
}

// BenchmarkAppendEvent measures one durable append, which is dominated by
// the fsyncs of the commit.
func BenchmarkAppendEvent(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	e := Event{Kind: "bench", Message: strings.Repeat("x", 300)}
	for b.Loop() {
		if _, err := s.AppendEvent(e); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVerdictAndFailoverDocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Verdict(); err != nil || b != nil {
		t.Fatalf("empty store: verdict %q, %v", b, err)
	}
	if err := s.PutVerdict([]byte(`{"verdict":"READY"}`)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"20261203T010000Z", "20261203T030000Z", "20261203T020000Z"} {
		if err := s.PutFailoverDoc("record", id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutFailoverDoc("bogus", "x", nil); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bogus kind: %v", err)
	}
	s.Close()
	s, err = Open(path, Options{}) // survives a reopen
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b, _ := s.Verdict(); string(b) != `{"verdict":"READY"}` {
		t.Fatalf("verdict after reopen: %q", b)
	}
	docs, err := s.FailoverDocs("record", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || string(docs[0]) != "20261203T030000Z" || string(docs[1]) != "20261203T020000Z" {
		t.Fatalf("newest two records: %q", docs)
	}
	if docs, _ := s.FailoverDocs("plan", 0); len(docs) != 0 {
		t.Fatalf("plans: %q", docs)
	}
}

// TestPutResultsOneTransaction: a batch is stored whole, newest first per
// probe; a batch with one unnamed result stores nothing.
func TestPutResultsOneTransaction(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	var batch []StoredResult
	for i := 0; i < 3; i++ {
		batch = append(batch, StoredResult{Node: "node-p", Probe: "web", OK: true, Start: t0.Add(time.Duration(i) * time.Minute)},
			StoredResult{Node: "node-s", Probe: "mail", OK: i != 1, Start: t0.Add(time.Duration(i) * time.Minute)})
	}
	if err := s.PutResults(batch...); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Results("node-s", "mail", 10)
	if err != nil || len(rs) != 3 || !rs[0].Start.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("node-s mail: %+v %v", rs, err)
	}
	bad := []StoredResult{{Node: "node-p", Probe: "web", Start: t0.Add(time.Hour)}, {Node: "node-p", Start: t0.Add(time.Hour)}}
	if err := s.PutResults(bad...); err == nil || !strings.Contains(err.Error(), "must both be named") {
		t.Fatalf("an unnamed result: %v", err)
	}
	if rs, _ := s.Results("node-p", "web", 10); len(rs) != 3 {
		t.Fatalf("a refused batch stored %d results, want the 3 before", len(rs))
	}
}

// PutPeerSoon writes the first record at once, holds the next ones (Peer
// returns them) until the store's next write of any kind, a PutPeer of the
// same peer replaces what it holds, and Close writes what is held.
func TestPutPeerSoon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(n int) PeerRecord {
		return PeerRecord{Name: "alpha", LastContact: t0.Add(time.Duration(n) * time.Second), Status: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
	}
	inFile := func() string { // the record in the file, past what is held
		var v string
		s.db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketPeers).Get([]byte("alpha"))); return nil })
		var p PeerRecord
		json.Unmarshal([]byte(v), &p)
		return string(p.Status)
	}
	seen := func() string {
		p, ok, err := s.Peer("alpha")
		if err != nil || !ok {
			t.Fatalf("Peer: %v, %v", ok, err)
		}
		return string(p.Status)
	}
	if err := s.PutPeerSoon(rec(1)); err != nil {
		t.Fatal(err)
	}
	if f := inFile(); f != `{"n":1}` {
		t.Fatalf("the first record is not written at once: file has %q", f)
	}
	if err := s.PutPeerSoon(rec(2)); err != nil {
		t.Fatal(err)
	}
	if f, p := inFile(), seen(); f != `{"n":1}` || p != `{"n":2}` {
		t.Errorf("a second record within a minute: file %q, Peer %q; want it held, and seen", f, p)
	}
	if _, err := s.AppendEvent(Event{Time: t0, Kind: "x", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if f := inFile(); f != `{"n":2}` {
		t.Errorf("after another write, the file has %q, want the held record", f)
	}
	s.PutPeerSoon(rec(3))
	if err := s.PutPeer(rec(4)); err != nil {
		t.Fatal(err)
	}
	if f, p := inFile(), seen(); f != `{"n":4}` || p != `{"n":4}` {
		t.Errorf("PutPeer after a held record: file %q, Peer %q; want the PutPeer's", f, p)
	}
	s.PutPeerSoon(rec(5))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p := seen(); p != `{"n":5}` {
		t.Errorf("after Close and Open: %q, want the record held at Close", p)
	}
	if err := s.PutPeerSoon(PeerRecord{}); err == nil {
		t.Error("PutPeerSoon without a name succeeded")
	}
}
