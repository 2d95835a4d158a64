package store

import (
	"errors"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// rounds are results of two probes on two nodes, one round a minute, some
// failing with a phase and with values, across an hour's end.
func rounds(n int) [][]StoredResult {
	var out [][]StoredResult
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(40+i) * time.Minute)
		var rs []StoredResult
		for _, node := range []string{"P", "S"} {
			for j, probe := range []string{"web", "mail"} {
				r := StoredResult{Node: node, Probe: probe, Start: at, DurationMS: int64(5 + 7*i + j), OK: (i+j)%3 != 0,
					Values: map[string]string{"latency_ms": "87"}}
				if !r.OK {
					r.FailedPhase = "connect"
				}
				rs = append(rs, r)
			}
		}
		out = append(out, rs)
	}
	return out
}

func allRollups(t *testing.T, s *Store) []Rollup {
	t.Helper()
	h, err := s.History().Hourly(t0.Add(-time.Hour), t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.History().Weekly(WeekKey(t0))
	if err != nil {
		t.Fatal(err)
	}
	return append(h, w...)
}

// The rollups PutResults writes from its cache are those decoding each
// stored record gives.
func TestRollupCacheSameAsDecoding(t *testing.T) {
	cached, plain := openTemp(t), openTemp(t)
	for _, rs := range rounds(30) {
		if err := cached.PutResults(rs...); err != nil {
			t.Fatal(err)
		}
		if err := plain.db.Update(func(tx *bolt.Tx) error { return rollIn(tx, rs) }); err != nil {
			t.Fatal(err)
		}
	}
	got, want := allRollups(t, cached), allRollups(t, plain)
	if len(want) != 2*2*2+2*2 || !reflect.DeepEqual(got, want) {
		t.Errorf("cached rollups differ from decoded ones:\n got %+v\nwant %+v", got, want)
	}
}

// A cached rollup stands for the stored one only while the stored bytes
// are the ones it was written as: after a transaction rolled back, or the
// record changed otherwise, the stored record is decoded again.
func TestRollupCacheNotTrustedAfterChange(t *testing.T) {
	s := openTemp(t)
	r := StoredResult{Node: "P", Probe: "web", Start: t0, DurationMS: 5, OK: true}
	if err := s.PutResults(r); err != nil {
		t.Fatal(err)
	}
	// Rolled back: the cache saw a second result the store does not hold.
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := rollInCached(tx, []StoredResult{r}, &s.rollups); err != nil {
			return err
		}
		return errors.New("the disk is full")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if err := s.PutResults(r); err != nil {
		t.Fatal(err)
	}
	if got := allRollups(t, s); len(got) != 2 || got[0].Count != 2 || got[1].Count != 2 {
		t.Fatalf("after a rolled-back transaction: %+v", got)
	}
	// Changed behind the cache's back: a count of 10 stored.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHourly).Bucket([]byte("P"))
		ru, err := decodeRollup(b.Get(periodKey(hourKey(t0), "web")))
		if err != nil {
			return err
		}
		ru.Count = 10
		return b.Put(periodKey(hourKey(t0), "web"), encodeRollup(ru))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutResults(r); err != nil {
		t.Fatal(err)
	}
	if got := allRollups(t, s); got[0].Count != 11 {
		t.Errorf("hourly count %d after a change behind the cache, want 11", got[0].Count)
	}
}
