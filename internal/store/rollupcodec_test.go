package store

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// labMailRollup is an hour of the lab's mail probe, as Add builds it.
func labMailRollup() Rollup {
	start := time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC)
	r := Rollup{Node: "node-p", Probe: "mail", Start: start}
	for i := 0; i < 360; i++ {
		res := StoredResult{Node: "node-p", Probe: "mail", Kind: "mail", Start: start.Add(time.Duration(i)*10*time.Second + 341926029),
			DurationMS: int64(180 + i%90), OK: i%120 != 7, Values: map[string]string{"latency_ms": "189"}}
		if !res.OK {
			res.FailedPhase = "imap login"
		}
		r.Add(res)
	}
	return r
}

func rollupCodecCases() []Rollup {
	full := labMailRollup()
	full.Damaged = true
	full.FailedPhases["(other)"] = 3
	full.Values["free_percent"] = ValueStat{Min: -0.5, Max: math.MaxFloat64, Last: 1e-300, LastAt: time.Date(2026, 12, 3, 23, 59, 59, 999999999, time.UTC)}
	full.Values["z"] = ValueStat{} // a zero LastAt
	var allBuckets Rollup
	for i := range allBuckets.Latency {
		allBuckets.Latency[i] = int64(i) << 40
	}
	allBuckets.Start = time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)
	allBuckets.First = allBuckets.Start.Add(-time.Hour) // before its start
	return []Rollup{
		labMailRollup(),
		full,
		{},                      // everything zero, the zero start too
		{Node: "n", Probe: "p"}, // names only
		{Node: strings.Repeat("é", 200), Probe: "disk /", Kind: "disk", Count: -1, Failures: math.MinInt64, MinMS: math.MaxInt64},
		allBuckets,
	}
}

// TestRollupCodecRoundTrip: a rollup reads back as it was written.
func TestRollupCodecRoundTrip(t *testing.T) {
	for i, want := range rollupCodecCases() {
		v := encodeRollup(want)
		got, err := decodeRollup(v)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d:\n got %#v\nwant %#v", i, got, want)
		}
		j, _ := json.Marshal(want)
		t.Logf("case %d: %d bytes, %d as JSON", i, len(v), len(j))
	}
}

// TestRollupCodecSize: an hour of the lab's mail probe takes at most a
// third of its JSON (what the compact form is for).
func TestRollupCodecSize(t *testing.T) {
	r := labMailRollup()
	j, _ := json.Marshal(r)
	c := encodeRollup(r)
	t.Logf("an hour of mail: %d bytes compact, %d as JSON", len(c), len(j))
	if len(c)*3 > len(j) {
		t.Fatalf("compact %d bytes, JSON %d", len(c), len(j))
	}
}

// TestRollupJSONStillRead: a rollup written as JSON (by the builds before
// the compact form) is read, merged into, and written back compact.
func TestRollupJSONStillRead(t *testing.T) {
	s := openTemp(t)
	old := labMailRollup()
	j, _ := json.Marshal(old)
	err := s.db.Update(func(tx *bolt.Tx) error {
		nb, err := tx.Bucket(bucketHourly).CreateBucketIfNotExists([]byte("node-p"))
		if err != nil {
			return err
		}
		return nb.Put(periodKey(hourKey(old.Start), "mail"), j)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.History().Hourly(old.Start, old.Start.Add(time.Hour))
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], old) {
		t.Fatalf("the JSON rollup read back as %+v, %v", got, err)
	}
	if err := s.PutResult(StoredResult{Node: "node-p", Probe: "mail", Kind: "mail", Start: old.Start.Add(59 * time.Minute), DurationMS: 7, OK: true}); err != nil {
		t.Fatal(err)
	}
	got, err = s.History().Hourly(old.Start, old.Start.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].Count != old.Count+1 || got[0].Damaged || got[0].MinMS != 7 {
		t.Fatalf("after one more result: %+v, %v", got, err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketHourly).Bucket([]byte("node-p")).Get(periodKey(hourKey(old.Start), "mail"))
		if len(v) == 0 || v[0] != rollupCompact {
			t.Errorf("the merged rollup is stored as %.20q, not compact", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRollupCodecDamage: a compact rollup cut short, with bytes after it or
// a field out of its range is an error, never a panic or a wrong rollup;
// the check at open (checkRecord) says which record it is.
func TestRollupCodecDamage(t *testing.T) {
	v := encodeRollup(rollupCodecCases()[1])
	for n := 0; n < len(v); n++ {
		if _, err := decodeRollup(v[:n]); err == nil {
			t.Fatalf("cut to %d of %d bytes: no error", n, len(v))
		}
	}
	empty := encodeRollup(Rollup{})
	bad := map[string][]byte{
		"a byte after the end":    append(append([]byte(nil), v...), 0),
		"unknown flags":           append([]byte{rollupCompact, 0x80}, v[2:]...),
		"a bad time marker":       append(append([]byte(nil), empty[:5]...), 2),
		"too many latency counts": append(append([]byte(nil), empty[:8]...), byte(LatencyBuckets+1)),
	}
	for name, b := range bad {
		if _, err := decodeRollup(b); err == nil || !strings.Contains(err.Error(), "compact rollup") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	path := [][]byte{bucketHourly, []byte("node-p")}
	key := periodKey([]byte("2026-W49"), "mail")
	if err := checkRecord(path, key, v); err != nil {
		t.Fatalf("checkRecord of a sound rollup: %v", err)
	}
	err := checkRecord(path, key, v[:len(v)-1])
	if want := "bucket hour_rollups/node-p: record 323032362d5734396d61696c cannot be read: compact rollup: compact record cut short"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("checkRecord of a rollup cut short: %v, want %q", err, want)
	}
	err = checkRecord(path, []byte("2026-W49"), v)
	if want := "record 323032362d573439 cannot be read: not a period and a probe"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("checkRecord of a key without a probe: %v, want %q", err, want)
	}
}

// FuzzDecodeRollup: no input makes the decoder panic or allocate beyond
// its input; what it accepts encodes back to a record that decodes the
// same.
func FuzzDecodeRollup(f *testing.F) {
	for _, r := range rollupCodecCases() {
		f.Add(encodeRollup(r))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRollup(v)
		if err != nil || len(v) == 0 || v[0] != rollupCompact {
			return
		}
		back := encodeRollup(r)
		r2, err := decodeRollup(back)
		if err != nil || !reflect.DeepEqual(normNaN(r2), normNaN(r)) {
			t.Fatalf("%x decodes to %+v, which encodes to %x, which decodes to %+v, %v", v, r, back, r2, err)
		}
	})
}

// normNaN replaces NaN readings (not equal to themselves) by a marker, for
// comparison.
func normNaN(r Rollup) Rollup {
	r = r.clone()
	for k, v := range r.Values {
		for _, f := range []*float64{&v.Min, &v.Max, &v.Last} {
			if math.IsNaN(*f) {
				*f = -12345
			}
		}
		r.Values[k] = v
	}
	return r
}
