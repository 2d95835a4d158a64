package store

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func codecCases() []StoredResult {
	return []StoredResult{
		result("node-p", "mail", 3),    // failed: message, failed phase, phase error
		result("node-s", "mail", 4),    // passed
		{Node: "node-p", Probe: "web"}, // everything zero
		{Node: "node-p", Probe: "disk /", Kind: "disk", Start: time.Date(2026, 12, 3, 18, 51, 54, 322401005, time.UTC), OK: true,
			Phases: []PhaseTiming{{Name: "statfs", OK: true}}, Values: map[string]string{"free_percent": "29.5", "a": "", "zz": "ü\x00"}},
		{Node: "n", Probe: "p", Start: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), DurationMS: -1,
			Message: strings.Repeat("é", 300), Phases: []PhaseTiming{{Name: "", MS: -5, Error: "x"}, {Name: "b", MS: 1 << 40}}},
	}
}

// TestResultCodecRoundTrip: a result reads back as it was written, its node
// and probe from the bucket names.
func TestResultCodecRoundTrip(t *testing.T) {
	for i, want := range codecCases() {
		v := encodeResult(want)
		got, err := decodeResult([]byte(want.Node), []byte(want.Probe), []byte("k"), v)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !got.Start.Equal(want.Start) || got.Start.IsZero() != want.Start.IsZero() {
			t.Fatalf("case %d: start %v, want %v", i, got.Start, want.Start)
		}
		got.Start, want.Start = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d:\n got %#v\nwant %#v", i, got, want)
		}
		j, _ := json.Marshal(want)
		t.Logf("case %d: %d bytes, %d as JSON", i, len(v), len(j))
	}
}

// TestResultCodecSize: the compact form of the lab's mail probe result is
// at most half its JSON (what the compact form is for).
func TestResultCodecSize(t *testing.T) {
	r := StoredResult{Node: "node-p", Probe: "mail", Kind: "mail", Start: time.Date(2026, 12, 3, 18, 51, 54, 319972963, time.UTC), DurationMS: 354, OK: true,
		Phases: []PhaseTiming{{Name: "smtp submit", MS: 77, OK: true}, {Name: "imap login", MS: 242, OK: true}, {Name: "canary visible", MS: 7, OK: true},
			{Name: "check token", MS: 2, OK: true}, {Name: "delete", MS: 13, OK: true}},
		Values: map[string]string{"latency_ms": "249"}}
	j, _ := json.Marshal(r)
	c := encodeResult(r)
	t.Logf("mail: %d bytes compact, %d as JSON", len(c), len(j))
	if len(c)*2 > len(j) {
		t.Fatalf("compact %d bytes, JSON %d", len(c), len(j))
	}
}

// TestResultCodecDamage: a compact record cut short, with bytes after it,
// or with a field out of its range is an error naming the result, never a
// panic or a wrong result.
func TestResultCodecDamage(t *testing.T) {
	v := encodeResult(codecCases()[3])
	for n := 1; n < len(v); n++ {
		if _, err := decodeResult([]byte("node-p"), []byte("disk /"), []byte{1}, v[:n]); err == nil {
			t.Fatalf("cut to %d of %d bytes: no error", n, len(v))
		}
	}
	bad := map[string][]byte{
		"a byte after the end": append(append([]byte(nil), v...), 0),
		"unknown flags":        append([]byte{resultCompact, 0x80}, v[2:]...),
		"a huge phase count":   append(encodeResult(StoredResult{})[:6], 0xff, 0xff, 0xff, 0xff, 0x0f, 0),
	}
	for name, b := range bad {
		_, err := decodeResult([]byte("node-p"), []byte("disk /"), []byte{1}, b)
		if err == nil || !strings.Contains(err.Error(), "result node-p/disk / 01") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// FuzzDecodeCompact: no input makes the decoder panic or allocate beyond
// its input; what it accepts encodes back to the same bytes.
func FuzzDecodeCompact(f *testing.F) {
	for _, r := range codecCases() {
		f.Add(encodeResult(r))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeResult([]byte("n"), []byte("p"), nil, v)
		if err != nil || len(v) == 0 || v[0] != resultCompact {
			return
		}
		if back := encodeResult(r); string(back) != string(v) {
			// Varints have one shortest form; a longer one decodes too.
			r2, err := decodeResult([]byte("n"), []byte("p"), nil, back)
			if err != nil || !reflect.DeepEqual(r2, r) {
				t.Fatalf("%x decodes to %+v, which encodes to %x, which decodes to %+v, %v", v, r, back, r2, err)
			}
		}
	})
}

// TestCompactRecordsRead: a store in which the next release wrote compact
// results after this one's JSON ones reads both, in order, through
// Results and LatestResults, prunes them, and passes the check at open.
func TestCompactRecordsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.PutResult(result("node-p", "mail", i)); err != nil {
			t.Fatal(err)
		}
	}
	// As the next release writes them.
	err = s.db.Update(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketResults).Bucket([]byte("node-p")).Bucket([]byte("mail"))
		for i := 3; i < 6; i++ {
			seq, _ := pb.NextSequence()
			r := result("node-p", "mail", i)
			if err := pb.Put(resultKey(r.Start, seq), encodeResult(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, sv, err := OpenChecked(path, Options{})
	if err != nil || sv != nil {
		t.Fatalf("OpenChecked of a store with compact results: %v, %v", sv, err)
	}
	defer s.Close()
	rs, err := s.Results("node-p", "mail", 0)
	if err != nil || len(rs) != 6 {
		t.Fatalf("Results: %d, %v", len(rs), err)
	}
	for i, r := range rs {
		if want := result("node-p", "mail", 5-i); !resultsEqual(r, want) {
			t.Fatalf("result %d:\n got %+v\nwant %+v", i, r, want)
		}
	}
	latest, err := s.LatestResults("node-p")
	if err != nil || !resultsEqual(latest["mail"], result("node-p", "mail", 5)) {
		t.Fatalf("LatestResults: %+v, %v", latest, err)
	}
	if n, err := s.Prune(t0, Retention{MaxResults: 2}); err != nil || n != 4 {
		t.Fatalf("Prune = %d, %v; want 4", n, err)
	}
	if rs, err := s.Results("node-p", "mail", 0); err != nil || len(rs) != 2 || startsOf(rs)[0] != 5 {
		t.Fatalf("after Prune: %v, %v", startsOf(rs), err)
	}
}
