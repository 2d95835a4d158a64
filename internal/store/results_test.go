package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func result(node, probe string, i int) StoredResult {
	r := StoredResult{
		Node:       node,
		Probe:      probe,
		Kind:       "mail",
		Start:      t0.Add(time.Duration(i) * time.Minute),
		DurationMS: int64(100 + i),
		OK:         i%3 != 0,
		Phases: []PhaseTiming{
			{Name: "smtp-send", MS: 40, OK: true},
			{Name: "imap-fetch", MS: int64(60 + i), OK: i%3 != 0},
		},
	}
	if !r.OK {
		r.Message = fmt.Sprintf("imap-fetch: canary not visible after %ds", i)
		r.FailedPhase = "imap-fetch"
		r.Phases[1].Error = fmt.Sprintf("canary not visible after %ds", i)
	}
	return r
}

func resultsEqual(a, b StoredResult) bool {
	if !a.Start.Equal(b.Start) {
		return false
	}
	a.Start, b.Start = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func startsOf(rs []StoredResult) []int {
	out := []int{}
	for _, r := range rs {
		out = append(out, int(r.Start.Sub(t0)/time.Minute))
	}
	return out
}

func TestResultsRoundTripOrderAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Stored out of time order: Results orders by start time, not by
	// insertion.
	order := []int{3, 0, 4, 1, 2}
	for _, i := range order {
		for _, probe := range []string{"mail", "web"} {
			if err := s.PutResult(result("node-p", probe, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PutResult(result("node-s", "mail", 9)); err != nil {
		t.Fatal(err)
	}
	// Two results with the same start time are both kept.
	dup := result("node-p", "mail", 2)
	dup.Message, dup.OK = "second run at the same instant", true
	if err := s.PutResult(dup); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []StoredResult{{Probe: "mail", Start: t0}, {Node: "node-p", Start: t0}} {
		if err := s.PutResult(bad); err == nil {
			t.Errorf("PutResult(%+v) succeeded", bad)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.Results("node-p", "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if g := startsOf(got); !reflect.DeepEqual(g, []int{4, 3, 2, 1, 0}) {
		t.Errorf("web results start at minutes %v, want newest first 4..0", g)
	}
	for _, r := range got {
		want := result("node-p", "web", int(r.Start.Sub(t0)/time.Minute))
		if !resultsEqual(r, want) {
			t.Errorf("after reopen:\n got %+v\nwant %+v", r, want)
		}
	}
	got, err = s.Results("node-p", "mail", 3)
	if err != nil {
		t.Fatal(err)
	}
	if g := startsOf(got); !reflect.DeepEqual(g, []int{4, 3, 2}) {
		t.Errorf("mail results with limit 3 start at %v, want [4 3 2]", g)
	}
	all, err := s.Results("node-p", "mail", -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || all[2].Message != dup.Message || all[3].Message != result("node-p", "mail", 2).Message {
		t.Errorf("mail results with a duplicate start time: %+v", all)
	}
	for _, c := range [][2]string{{"node-x", "mail"}, {"node-p", "dns"}, {"", ""}} {
		rs, err := s.Results(c[0], c[1], 0)
		if err != nil || len(rs) != 0 {
			t.Errorf("Results(%q, %q) = %v, %v; want none", c[0], c[1], rs, err)
		}
	}

	latest, err := s.LatestResults("node-p")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 2 || !resultsEqual(latest["web"], result("node-p", "web", 4)) || !resultsEqual(latest["mail"], result("node-p", "mail", 4)) {
		t.Errorf("LatestResults(node-p) = %+v", latest)
	}
	latest, err = s.LatestResults("node-s")
	if err != nil || len(latest) != 1 || !resultsEqual(latest["mail"], result("node-s", "mail", 9)) {
		t.Errorf("LatestResults(node-s) = %+v, %v", latest, err)
	}
	latest, err = s.LatestResults("nobody")
	if err != nil || latest == nil || len(latest) != 0 {
		t.Errorf("LatestResults(nobody) = %#v, %v; want an empty map", latest, err)
	}
}

func TestPruneResults(t *testing.T) {
	s := openTemp(t)
	for i := 0; i < 10; i++ {
		for _, node := range []string{"node-p", "node-s"} {
			if err := s.PutResult(result(node, "mail", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 2; i++ {
		if err := s.PutResult(result("node-p", "web", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendEvent(Event{Time: t0, Kind: "k", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAlertState([]byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}

	// No MaxResults: results are left alone by the other limits.
	n, err := s.Prune(t0.Add(time.Hour), Retention{MaxEvents: 5, TokenAge: time.Hour})
	if err != nil || n != 0 {
		t.Fatalf("Prune without MaxResults = %d, %v; want 0", n, err)
	}
	n, err = s.Prune(t0.Add(time.Hour), Retention{MaxResults: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n != 14 { // 7 of each node's mail, none of the 2 web results
		t.Errorf("Prune deleted %d, want 14", n)
	}
	for _, node := range []string{"node-p", "node-s"} {
		got, err := s.Results(node, "mail", 0)
		if err != nil {
			t.Fatal(err)
		}
		if g := startsOf(got); !reflect.DeepEqual(g, []int{9, 8, 7}) {
			t.Errorf("%s mail after prune: %v, want [9 8 7]", node, g)
		}
	}
	if got, err := s.Results("node-p", "web", 0); err != nil || len(got) != 2 {
		t.Errorf("web after prune = %v, %v; want both kept", got, err)
	}
	if evs, err := s.Events(0, 0); err != nil || len(evs) != 1 {
		t.Errorf("events after a results prune: %v, %v", evs, err)
	}
	if st, err := s.AlertState(); err != nil || string(st) != `{"v":1}` {
		t.Errorf("alert state after prune: %q, %v", st, err)
	}
	// New results go on after a prune, and pruning again changes nothing.
	if err := s.PutResult(result("node-p", "mail", 10)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(t0, Retention{MaxResults: 4}); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
	if got, _ := s.Results("node-p", "mail", 1); len(got) != 1 || startsOf(got)[0] != 10 {
		t.Errorf("newest after prune: %v", startsOf(got))
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestAlertStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.AlertState(); err != nil || st != nil {
		t.Fatalf("AlertState on a new store = %q, %v; want nil", st, err)
	}
	want := []byte(`{"version":1,"probes":[{"node":"node-s","probe":"mail","firing":true}]}`)
	if err := s.PutAlertState([]byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAlertState(want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.AlertState()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("AlertState after reopen = %q, %v; want %q", got, err, want)
	}
	// The returned slice is a copy the caller may keep and change.
	got[0] = 'X'
	again, _ := s.AlertState()
	if !bytes.Equal(again, want) {
		t.Errorf("changing the returned state changed the store: %q", again)
	}
	if err := s.PutAlertState(nil); err != nil {
		t.Fatal(err)
	}
	if st, err := s.AlertState(); err != nil || st != nil {
		t.Errorf("AlertState after PutAlertState(nil) = %q, %v; want nil", st, err)
	}
}

// A version 1 file written before the results and alert buckets existed
// opens, keeps its records and its schema version, and gains the buckets.
func TestOpenFileWithoutResultBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := Event{Seq: 1, Time: t0, Kind: "join", Message: "from an older sentry"}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketEvents, bucketTokens, bucketPeers} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte("1")); err != nil {
			return err
		}
		return tx.Bucket(bucketEvents).Put(seqKey(1), []byte(`{"seq":1,"time":"2026-03-01T12:00:00Z","kind":"join","message":"from an older sentry"}`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 1 file without the results bucket: %v", err)
	}
	evs, err := s.Events(0, 0)
	if err != nil || len(evs) != 1 || !eventsEqual(evs[0], old) {
		t.Errorf("old events = %+v, %v", evs, err)
	}
	if err := s.PutResult(result("node-p", "mail", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAlertState([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "1" {
			return fmt.Errorf("schema version became %q, want 1", v)
		}
		for _, name := range [][]byte{bucketResults, bucketAlert} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s was not created", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// Measured values are kept with a result; a record an older sentry wrote,
// without values, still reads beside new ones, through both Results and
// LatestResults (and an older sentry ignores the field it does not know).
func TestResultValuesAndOlderRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		nb, err := tx.Bucket(bucketResults).CreateBucketIfNotExists([]byte("node-s"))
		if err != nil {
			return err
		}
		pb, err := nb.CreateBucketIfNotExists([]byte("mail"))
		if err != nil {
			return err
		}
		// As the version before values wrote it.
		return pb.Put(resultKey(t0, 1), []byte(`{"node":"node-s","probe":"mail","kind":"mail","start":"2026-03-01T12:00:00Z","duration_ms":120,"ok":true,"phases":[{"name":"smtp submit","ms":40,"ok":true}]}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	withValues := result("node-s", "mail", 1)
	withValues.Values = map[string]string{"latency_ms": "87"}
	if err := s.PutResult(withValues); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	rs, err := s.Results("node-s", "mail", 0)
	if err != nil || len(rs) != 2 {
		t.Fatalf("Results = %+v, %v", rs, err)
	}
	if !resultsEqual(rs[0], withValues) || rs[0].Values["latency_ms"] != "87" {
		t.Errorf("newest = %+v, want %+v", rs[0], withValues)
	}
	old := StoredResult{Node: "node-s", Probe: "mail", Kind: "mail", Start: t0, DurationMS: 120, OK: true,
		Phases: []PhaseTiming{{Name: "smtp submit", MS: 40, OK: true}}}
	if !resultsEqual(rs[1], old) || rs[1].Values != nil {
		t.Errorf("older record = %+v, want %+v", rs[1], old)
	}
	latest, err := s.LatestResults("node-s")
	if err != nil || latest["mail"].Values["latency_ms"] != "87" {
		t.Errorf("LatestResults = %+v, %v", latest, err)
	}
}

// TestPruneResultsOutOfOrder: a result written out of time order (its
// start before results written earlier) is kept while it is among the last
// MaxResults writes, holds the older ones behind it for that long at most,
// and goes when it is old enough itself.
func TestPruneResultsOutOfOrder(t *testing.T) {
	s := openTemp(t)
	for i := 10; i < 20; i++ {
		if err := s.PutResult(result("node-p", "mail", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Written 11th, but started before all of them.
	if err := s.PutResult(result("node-p", "mail", 0)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(t0, Retention{MaxResults: 5}); err != nil || n != 0 {
		// The late one is at the front and among the last 5 writes: the
		// walk stops there.
		t.Fatalf("Prune = %d, %v; want 0 (held by the late result)", n, err)
	}
	for i := 20; i < 25; i++ {
		if err := s.PutResult(result("node-p", "mail", i)); err != nil {
			t.Fatal(err)
		}
	}
	// 16 writes: the late one (11th) is no longer among the last 5.
	n, err := s.Prune(t0, Retention{MaxResults: 5})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Results("node-p", "mail", 0)
	if err != nil {
		t.Fatal(err)
	}
	if g := startsOf(got); n != 11 || !reflect.DeepEqual(g, []int{24, 23, 22, 21, 20}) {
		t.Fatalf("Prune deleted %d, kept %v; want 11 deleted, [24 23 22 21 20] kept", n, g)
	}
}

// TestPruneResultsReadsOnlyWhatItDrops: pruning a probe's oldest results
// reads the pages of those, not the whole file. The store's file is a
// memory map, so every page read stays in the agent's resident memory;
// counting the results (as Prune did) put the whole file there once an
// hour. Measured on this process's mapping of the file (/proc/self/smaps).
func TestPruneResultsReadsOnlyWhatItDrops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const nodes, probes, each, keep = 2, 10, 2400, 2390
	for n := 0; n < nodes; n++ {
		for p := 0; p < probes; p++ {
			var rs []StoredResult
			for i := 0; i < each; i++ {
				rs = append(rs, result(fmt.Sprintf("node-%d", n), fmt.Sprintf("probe-%d", p), i))
			}
			if err := s.PutResults(rs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{}) // a fresh mapping
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := mappedRSS(t, path)
	n, err := s.Prune(t0.Add(time.Hour), Retention{MaxResults: keep})
	if err != nil || n != nodes*probes*(each-keep) {
		t.Fatalf("Prune = %d, %v; want %d", n, err, nodes*probes*(each-keep))
	}
	after := mappedRSS(t, path)
	t.Logf("file %d KiB; mapping resident %d KiB before Prune, %d KiB after", fi.Size()>>10, before>>10, after>>10)
	if after > fi.Size()/4 {
		t.Fatalf("Prune made %d KiB of the %d KiB file resident: it reads what it keeps", after>>10, fi.Size()>>10)
	}
	for p := 0; p < probes; p++ {
		got, err := s.Results("node-1", fmt.Sprintf("probe-%d", p), 0)
		if err != nil || len(got) != keep || startsOf(got)[0] != each-1 || startsOf(got)[keep-1] != each-keep {
			t.Fatalf("probe-%d after prune: %d results, %v", p, len(got), err)
		}
	}
}

// mappedRSS is the resident size of this process's mappings of path.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && f[len(f)-1] == path
			continue
		}
		if in && len(f) == 3 && f[0] == "Rss:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += kb << 10
		}
	}
	return sum
}

// TestAppendedPagesFull: the results, rollups and events, written in key
// order, fill their pages (bbolt's default split leaves each half empty).
func TestAppendedPagesFull(t *testing.T) {
	s := openTemp(t)
	for round := 0; round < 400; round++ {
		var rs []StoredResult
		for p := 0; p < 4; p++ {
			rs = append(rs, result("node-p", fmt.Sprintf("probe-%d", p), round*60)) // an hour apart
		}
		if err := s.PutResults(rs...); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvent(Event{Kind: "test", Message: fmt.Sprintf("round %d of the test's rounds", round)}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketResults, bucketEvents, bucketHourly} {
			st := tx.Bucket(name).Stats()
			pages := st.LeafPageN + st.LeafOverflowN
			fill := float64(st.LeafInuse) / float64(pages*4096)
			t.Logf("%s: %d keys in %d leaf pages, %.0f %% full", name, st.KeyN, pages, 100*fill)
			if fill < 0.7 {
				t.Errorf("%s: leaf pages %.0f %% full, want 70 %% or more (bbolt's default split: about half)", name, 100*fill)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
