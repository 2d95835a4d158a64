package store

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestWeekKeys(t *testing.T) {
	cases := []struct {
		at   time.Time
		key  string
		mond string
	}{
		{time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC), "2026-W49", "2026-11-30"},
		{time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "2026-W49", "2026-11-30"},
		{time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC), "2026-W48", "2026-11-23"},
		{time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC), "2026-W53", "2026-12-28"},
		{time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC), "2026-W01", "2025-12-29"},
	}
	for _, c := range cases {
		if k := WeekKey(c.at); k != c.key {
			t.Errorf("WeekKey(%s) = %s, want %s", c.at, k, c.key)
		}
		if m := WeekStart(c.at).Format(time.DateOnly); m != c.mond {
			t.Errorf("WeekStart(%s) = %s, want %s", c.at, m, c.mond)
		}
		start, err := WeekStartOf(c.key)
		if err != nil || start.Format(time.DateOnly) != c.mond {
			t.Errorf("WeekStartOf(%s) = %s, %v; want %s", c.key, start, err, c.mond)
		}
	}
	for _, bad := range []string{"2025-W53", "2026-W00", "2026-W54", "2026-49", "W49", "2026-W4"} {
		if _, err := WeekStartOf(bad); err == nil {
			t.Errorf("WeekStartOf(%q): no error", bad)
		}
	}
}

func TestHistogramPercentile(t *testing.T) {
	var r Rollup
	// 90 fast runs (20 ms) and 10 slow ones (900 ms).
	for i := 0; i < 100; i++ {
		ms := int64(20)
		if i >= 90 {
			ms = 900
		}
		r.Add(StoredResult{DurationMS: ms, OK: true, Start: t0})
	}
	p50, _ := r.Percentile(50)
	p95, _ := r.Percentile(95)
	p100, _ := r.Percentile(100)
	if p50 < 15 || p50 > 20 {
		t.Errorf("p50 = %v, want within the bucket (15, 20]", p50)
	}
	if p95 < 700 || p95 > 900 {
		t.Errorf("p95 = %v, want within (700, 900]", p95)
	}
	if p100 != 900 {
		t.Errorf("p100 = %v, want the max 900", p100)
	}
	var empty Histogram
	if _, ok := empty.Percentile(50, 0, 0); ok {
		t.Error("an empty histogram gave a percentile")
	}
	// Beyond the last bound: the max bounds it.
	var big Rollup
	big.Add(StoredResult{DurationMS: 90000, Start: t0})
	if p, _ := big.Percentile(50); p != 90000 {
		t.Errorf("p50 of one 90 s run = %v", p)
	}
}

// TestPercentileAcrossHours is why the histograms exist: the p95 of two
// hours is not the mean of their p95s; the merged histogram gives it.
func TestPercentileAcrossHours(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b, week Rollup
	var all []float64
	for i := 0; i < 120; i++ {
		ms := int64(30 + rng.IntN(20)) // a quiet hour
		a.Add(StoredResult{DurationMS: ms, OK: true, Start: t0})
		all = append(all, float64(ms))
		ms = int64(200 + rng.IntN(2000)) // a slow hour
		b.Add(StoredResult{DurationMS: ms, OK: true, Start: t0.Add(time.Hour)})
		all = append(all, float64(ms))
	}
	week.Merge(a)
	week.Merge(b)
	sort.Float64s(all)
	exact := all[int(math.Ceil(0.95*float64(len(all))))-1]
	got, _ := week.Percentile(95)
	// Within the bucket the exact value falls in (bounds 1500..2000 or
	// 2000..3000, ratio at most 1.5).
	if got < exact/1.5 || got > exact*1.5 {
		t.Errorf("merged p95 = %.0f, exact %.0f", got, exact)
	}
	if week.Count != 240 || week.MinMS > 49 || week.MaxMS < 200 {
		t.Errorf("merged: %+v", week)
	}
}

func TestPutResultsRollsUp(t *testing.T) {
	s := openTemp(t)
	hour := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var rs []StoredResult
	for i := 0; i < 240; i++ { // two hours of one probe every 30 s
		r := StoredResult{Node: "P", Probe: "web", Kind: "http", Start: hour.Add(time.Duration(i) * 30 * time.Second),
			DurationMS: int64(10 + i%50), OK: i%40 != 0, Values: map[string]string{"free_percent": fmt.Sprint(50 - i/10), "note": "x"}}
		if !r.OK {
			r.FailedPhase = "connect"
		}
		rs = append(rs, r)
	}
	// Two transactions, split inside the first hour: the hour is merged.
	if err := s.PutResults(rs[:60]...); err != nil {
		t.Fatal(err)
	}
	if err := s.PutResults(rs[60:]...); err != nil {
		t.Fatal(err)
	}
	h := s.History()
	got, err := h.Hourly(hour, hour.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d hourly rollups, want 2", len(got))
	}
	r0 := got[0]
	if r0.Count != 120 || r0.Failures != 3 || r0.FailedPhases["connect"] != 3 || !r0.Start.Equal(hour) || r0.Kind != "http" {
		t.Errorf("hour 0: %+v", r0)
	}
	if v := r0.Values["free_percent"]; v.Min != 39 || v.Max != 50 || v.Last != 39 || len(r0.Values) != 1 {
		t.Errorf("hour 0 values: %+v", r0.Values)
	}
	// A window that starts inside an hour leaves that hour out.
	if part, _ := h.Hourly(hour.Add(time.Minute), hour.Add(2*time.Hour)); len(part) != 1 {
		t.Errorf("Hourly from inside the first hour: %d rollups, want 1", len(part))
	}
	week, err := h.Weekly("2026-W49")
	if err != nil {
		t.Fatal(err)
	}
	if len(week) != 1 || week[0].Count != 240 || week[0].Failures != 6 || week[0].Latency.Total() != 240 {
		t.Errorf("week: %+v", week)
	}
	first, ok, err := h.First()
	if err != nil || !ok || !first.Equal(hour) {
		t.Errorf("First = %s %v %v, want %s", first, ok, err, hour)
	}
	// An invalid result stores nothing: no result and no rollup.
	bad := []StoredResult{{Node: "P", Probe: "web", Start: hour.Add(3 * time.Hour)}, {Node: "", Probe: "x", Start: hour}}
	if err := s.PutResults(bad...); err == nil {
		t.Fatal("PutResults accepted a result without a node")
	}
	if later, _ := h.Hourly(hour.Add(3*time.Hour), hour.Add(4*time.Hour)); len(later) != 0 {
		t.Errorf("a refused PutResults left rollups: %+v", later)
	}
	if _, err := h.Weekly("2026-49"); err == nil {
		t.Error("Weekly accepted a bad week key")
	}
}

// TestRollupAtomic: a transaction that fails after the rollups were
// written leaves neither results nor rollups (one bbolt transaction).
func TestRollupAtomic(t *testing.T) {
	s := openTemp(t)
	r := StoredResult{Node: "P", Probe: "web", Start: t0, DurationMS: 5, OK: true}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := rollIn(tx, []StoredResult{r}); err != nil {
			return err
		}
		return fmt.Errorf("the disk is full")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if got, _ := s.History().Hourly(t0.Add(-time.Hour), t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("rollups after a failed transaction: %+v", got)
	}
}

func TestDamagedRollupReplaced(t *testing.T) {
	s := openTemp(t)
	r := StoredResult{Node: "P", Probe: "web", Start: t0, DurationMS: 5, OK: true}
	if err := s.PutResult(r); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHourly).Bucket([]byte("P")).Put(periodKey(hourKey(t0), "web"), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.History().Hourly(t0.Add(-time.Hour), t0.Add(time.Hour)); err == nil {
		t.Error("reading a damaged rollup: no error")
	} else if want := "P/web 2026-03-01T12:00:00Z"; !contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	// The next result is stored; the rollup restarts, marked damaged.
	if err := s.PutResult(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.History().Hourly(t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].Count != 1 || !got[0].Damaged {
		t.Errorf("after a damaged record: %+v %v", got, err)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

func TestPruneHistory(t *testing.T) {
	s := openTemp(t)
	now := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)
	// One result a day for 400 days.
	var rs []StoredResult
	for d := 0; d < 400; d++ {
		rs = append(rs, StoredResult{Node: "P", Probe: "web", Start: now.AddDate(0, 0, -d), DurationMS: 5, OK: true})
	}
	if err := s.PutResults(rs...); err != nil {
		t.Fatal(err)
	}
	h := s.History()
	for _, w := range []string{"2026-W49", "2025-W49", "2025-W40"} {
		if err := h.PutReport(w, []byte(`{"week":"`+w+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.PutReport("2026-49", []byte("{}")); err == nil {
		t.Error("PutReport accepted a bad week key")
	}
	if _, err := s.Prune(now, Retention{MaxResults: 10}); err != nil {
		t.Fatal(err)
	}
	hours, err := h.Hourly(now.AddDate(-2, 0, 0), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hours) != 41 { // days 0..40: day 40 is at the cutoff instant, kept
		t.Errorf("%d hourly rollups kept, want 41", len(hours))
	}
	var weeks []string
	for d := 0; d < 400; d += 7 {
		w := WeekKey(now.AddDate(0, 0, -d))
		if got, _ := h.Weekly(w); len(got) == 1 {
			weeks = append(weeks, w)
		}
	}
	if len(weeks) < 53 || len(weeks) > 55 {
		t.Errorf("%d weeks kept, want a year (54): %v", len(weeks), weeks)
	}
	reps, err := h.Reports()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reps {
		names = append(names, r.Week)
	}
	if want := []string{"2026-W49", "2025-W49"}; !reflect.DeepEqual(names, want) {
		t.Errorf("reports kept %v, want %v", names, want)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

// BenchmarkStoreSizeForAYear states the store's size after a year of
// history of 15 probes on 2 nodes run every 30 s, with the agent's
// retention: the hourly rollups of the last 40 days, the weekly ones and a
// 24 KiB report a week for a year, 1000 raw results per probe
// (verifier.keep_results) and 90 days of events (40 a day). The year is
// written a day per transaction and pruned daily; each hour's rollup is
// made from 120 results. It takes about 20 s, so it is a benchmark, run
// once:
//
//	go test -run '^$' -bench StoreSizeForAYear -benchtime 1x ./internal/store/
func BenchmarkStoreSizeForAYear(b *testing.B) {
	for b.Loop() {
		file, inUse := storeYear(b)
		b.ReportMetric(file/(1<<20), "MiB-file")
		b.ReportMetric(inUse/(1<<20), "MiB-in-use")
	}
}

func storeYear(t testing.TB) (file, inUse float64) {
	path := t.TempDir() + "/state.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const probes, nodes, perHour = 15, 2, 120
	rng := rand.New(rand.NewPCG(7, 7))
	// 24 hour shapes per probe, made from 120 results each: realistic
	// histograms and failures.
	shapes := make([][]Rollup, probes)
	for p := range shapes {
		for h := 0; h < 24; h++ {
			var r Rollup
			for i := 0; i < perHour; i++ {
				res := StoredResult{DurationMS: int64(5 + rng.ExpFloat64()*float64(20*(p+1))), OK: rng.IntN(200) != 0, Start: t0}
				if !res.OK {
					res.FailedPhase = []string{"connect", "tls", "login", "fetch"}[rng.IntN(4)]
				}
				if p == 0 {
					res.Values = map[string]string{"free_percent": fmt.Sprintf("%.1f", 40+rng.Float64())}
				}
				r.Add(res)
			}
			shapes[p] = append(shapes[p], r)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ret := Retention{MaxResults: 1000, MaxAge: 90 * 24 * time.Hour, MaxEvents: 100000}
	for d := 0; d < 365; d++ {
		day := start.AddDate(0, 0, d)
		hours, weeks := map[rollupKey]*Rollup{}, map[rollupKey]*Rollup{}
		for n := 0; n < nodes; n++ {
			for p := 0; p < probes; p++ {
				node, probe := fmt.Sprintf("node-%d", n), fmt.Sprintf("probe-%02d", p)
				for h := 0; h < 24; h++ {
					at := day.Add(time.Duration(h) * time.Hour)
					r := shapes[p][h]
					r.Node, r.Probe, r.Start, r.First, r.Last = node, probe, at, at, at.Add(59*time.Minute+30*time.Second)
					hours[rollupKey{node, probe, string(hourKey(at))}] = &r
					wk := rollupKey{node, probe, WeekKey(at)}
					if weeks[wk] == nil {
						weeks[wk] = &Rollup{Node: node, Probe: probe, Start: WeekStart(at)}
					}
					weeks[wk].Merge(r)
				}
			}
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := mergeRollups(tx.Bucket(bucketHourly), hours); err != nil {
				return err
			}
			return mergeRollups(tx.Bucket(bucketWeekly), weeks)
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ { // events: verdict changes, config, inventory ...
			if _, err := s.AppendEvent(Event{Time: day.Add(time.Duration(i) * 30 * time.Minute), Kind: "config-commit", Node: "node-0",
				Message: "configuration commit 0123456789ab: 2 path(s) changed", Fields: map[string]string{"commit": "0123456789abcdef0123456789abcdef01234567", "paths": "/etc/postfix/main.cf /etc/hosts"}}); err != nil {
				t.Fatal(err)
			}
		}
		if d%7 == 6 {
			if err := s.History().PutReport(WeekKey(day), make([]byte, 24<<10)); err != nil { // a 24 KiB report
				t.Fatal(err)
			}
		}
		if _, err := s.Prune(day.Add(24*time.Hour), ret); err != nil {
			t.Fatal(err)
		}
	}
	// The raw results the agent keeps: the last 1000 of each probe.
	end := start.AddDate(0, 0, 365)
	for n := 0; n < nodes; n++ {
		var rs []StoredResult
		for p := 0; p < probes; p++ {
			for i := 0; i < 1000; i++ {
				rs = append(rs, StoredResult{Node: fmt.Sprintf("node-%d", n), Probe: fmt.Sprintf("probe-%02d", p), Kind: "http",
					Start: end.Add(-time.Duration(1000-i) * 30 * time.Second), DurationMS: int64(20 + i%30), OK: true,
					Phases: []PhaseTiming{{Name: "connect", MS: 3, OK: true}, {Name: "fetch", MS: 17, OK: true}}, Values: map[string]string{"latency_ms": "20"}})
			}
		}
		if err := s.PutResults(rs...); err != nil {
			t.Fatal(err)
		}
	}
	var hist, weekly, results, events, reports int
	err = s.db.View(func(tx *bolt.Tx) error {
		size := func(name []byte) int {
			st := tx.Bucket(name).Stats()
			return st.BranchInuse + st.LeafInuse + st.InlineBucketInuse
		}
		hist, weekly, results, events, reports = size(bucketHourly), size(bucketWeekly), size(bucketResults), size(bucketEvents), size(bucketReports)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mib := func(n int) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	t.Logf("a year of history, 15 probes x 2 nodes every 30 s: store file %s; in use: hourly rollups %s, weekly rollups %s, stored reports %s, raw results %s, events %s",
		mib(int(fi.Size())), mib(hist), mib(weekly), mib(reports), mib(results), mib(events))
	if err := s.Check(); err != nil {
		t.Error(err)
	}
	return float64(fi.Size()), float64(hist + weekly + results + events + reports)
}

// BenchmarkPutRound is one round of 15 probes stored with its rollups
// (the hook's cost: 30 rollups read and written in the same transaction).
func BenchmarkPutRound(b *testing.B) {
	s, err := Open(b.TempDir()+"/state.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rs := make([]StoredResult, 15)
	at := t0
	for b.Loop() {
		for i := range rs {
			rs[i] = StoredResult{Node: "P", Probe: fmt.Sprintf("probe-%02d", i), Kind: "http", Start: at, DurationMS: int64(10 + i), OK: i != 3,
				Phases: []PhaseTiming{{Name: "connect", MS: 3, OK: true}}}
		}
		if err := s.PutResults(rs...); err != nil {
			b.Fatal(err)
		}
		at = at.Add(30 * time.Second)
	}
}

func TestHistoryEvents(t *testing.T) {
	s := openTemp(t)
	for i, e := range []Event{
		{Kind: "ready-changed", Message: "READY"},
		{Kind: "alert-down", Message: `a message that says "kind":"ready-changed"`},
		{Kind: `odd"kind`, Message: "escaped in JSON"},
		{Kind: "drift", Message: "packages in step"},
		{Kind: "ready-changed", Message: "NOT READY: x"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.AppendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.History().Events("ready-changed", `odd"kind`)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"ready-changed", `odd"kind`, "ready-changed"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %q, want %q", kinds, want)
	}
}

// BenchmarkHistoryEvents: the report's read of a few kinds out of a full
// event log (the agent keeps up to 100,000 events).
func BenchmarkHistoryEvents(b *testing.B) {
	s, err := Open(b.TempDir()+"/state.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	err = s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEvents)
		for i := 0; i < 100000; i++ {
			seq, err := bk.NextSequence()
			if err != nil {
				return err
			}
			kind := "alert-down"
			if i%1000 == 0 {
				kind = "ready-changed"
			}
			v, err := json.Marshal(Event{Seq: seq, Time: t0.Add(time.Duration(i) * time.Minute), Kind: kind, Node: "alpha",
				Message: "configuration commit 0123456789ab: 2 path(s) changed", Fields: map[string]string{"commit": "0123456789abcdef0123456789abcdef01234567"}})
			if err != nil {
				return err
			}
			if err := bk.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		evs, err := s.History().Events("ready-changed", "drift", "inventory")
		if err != nil || len(evs) != 100 {
			b.Fatal(len(evs), err)
		}
	}
}

// TestRollupsMoved: Open moves the rollups the builds before kept in a
// bucket per probe into their node's bucket, merges them into those of the
// same period written since, drops what cannot be read, and removes the
// old buckets; a second Open has nothing to move.
func TestRollupsMoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := func(probe string, at time.Time, ms int64) StoredResult {
		return StoredResult{Node: "node-p", Probe: probe, Kind: "http", Start: at, DurationMS: ms, OK: true}
	}
	// Written by this build: web at t0's hour, one result of 9 ms.
	if err := s.PutResult(res("web", t0.Add(30*time.Minute), 9)); err != nil {
		t.Fatal(err)
	}
	// Written by a build before: web and mail at t0's hour, mail at the
	// hour before, the weeks, and a record damaged.
	old := func(probe string, at time.Time, ms ...int64) Rollup {
		r := Rollup{Node: "node-p", Probe: probe, Start: HourStart(at)}
		for _, m := range ms {
			r.Add(res(probe, at, m))
		}
		return r
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		put := func(bucket []byte, probe string, period []byte, v []byte) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			if b, err = b.CreateBucketIfNotExists([]byte("node-p")); err != nil {
				return err
			}
			if b, err = b.CreateBucketIfNotExists([]byte(probe)); err != nil {
				return err
			}
			return b.Put(period, v)
		}
		for _, p := range []struct {
			bucket []byte
			probe  string
			period []byte
			v      []byte
		}{
			{bucketHourlyByProbe, "web", hourKey(t0), encodeRollup(old("web", t0, 3, 5))},
			{bucketHourlyByProbe, "mail", hourKey(t0), encodeRollup(old("mail", t0, 40))},
			{bucketHourlyByProbe, "mail", hourKey(t0.Add(-time.Hour)), encodeRollup(old("mail", t0.Add(-time.Hour), 50))},
			{bucketHourlyByProbe, "smb", hourKey(t0), []byte("{not json")},
			{bucketWeeklyByProbe, "mail", []byte(WeekKey(t0)), encodeRollup(old("mail", t0, 40, 50))},
		} {
			if err := put(p.bucket, p.probe, p.period, p.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hours, err := s.History().Hourly(t0.Add(-2*time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range hours {
		got = append(got, fmt.Sprintf("%s %s %s n=%d min=%d max=%d", r.Node, r.Probe, r.Start.Format("15:04"), r.Count, r.MinMS, r.MaxMS))
	}
	want := []string{
		"node-p mail 11:00 n=1 min=50 max=50",
		"node-p mail 12:00 n=1 min=40 max=40",
		"node-p web 12:00 n=3 min=3 max=9", // merged: 3 and 5 moved, 9 written here
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hourly rollups after the move:\n got %q\nwant %q", got, want)
	}
	weeks, err := s.History().Weekly(WeekKey(t0))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range weeks {
		got = append(got, fmt.Sprintf("%s %s n=%d", r.Node, r.Probe, r.Count))
	}
	if want := []string{"node-p mail n=2", "node-p web n=1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("weekly rollups after the move: got %q, want %q", got, want)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketHourlyByProbe) != nil || tx.Bucket(bucketWeeklyByProbe) != nil {
			t.Error("the buckets per probe are still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}
