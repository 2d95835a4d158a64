package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// History that survives the retention of the raw results (issue 16).
//
// Every result PutResults stores is also added, in the same transaction, to
// two rollups of its node and probe: the one of its hour and the one of its
// ISO week (both in UTC). A rollup counts the runs and failures, the
// failures by phase, and holds a latency histogram with fixed buckets, so
// that hours add up to a week and percentiles can be read from the sum
// (percentiles of hours cannot be added). Prune keeps hourly rollups for
// Retention.HourlyAge (default 40 days) and weekly ones, and the stored
// weekly reports, for Retention.WeeklyAge (default 54 weeks).
//
// Size: for 15 probes on 2 nodes run every 30 s, a year of history holds
// about 2.8 MiB of hourly rollups (28,800 in their compact form,
// rollupcodec.go, keyed by hour and probe: about 100 bytes each in the
// file; 8 MiB as JSON), 0.2 MiB
// of weekly ones and the reports (24 KiB a week: 1.2 MiB); with the
// agent's 1000 raw results per probe (7.3 MiB) and 90 days of events the
// store uses 12.5 MiB, in a file of 16 MiB (bbolt's high-water mark, with
// its 16 MiB growth step). BenchmarkStoreSizeForAYear measures it.

// The rollups of a node are one bucket, keyed by period and then probe
// (periodKey): a round's results, all of one hour and one week, change
// one page of each instead of one per probe. The builds before kept a
// bucket per probe (bucketHourlyByProbe, bucketWeeklyByProbe: node ->
// probe -> period -> Rollup); Open moves what they wrote (migrateRollups).
var (
	bucketHourly  = []byte("hour_rollups") // node -> periodKey(hourKey, probe) -> Rollup
	bucketWeekly  = []byte("week_rollups") // node -> periodKey("2026-W49", probe) -> Rollup
	bucketReports = []byte("reports")      // "2026-W49" -> a weekly report document

	bucketHourlyByProbe = []byte("rollup_hour")
	bucketWeeklyByProbe = []byte("rollup_week")
)

// periodLen is the length of a period's key: an hourKey (8 bytes) or a
// week's ("2026-W49", 8 characters).
const periodLen = 8

// periodKey is the key of a probe's rollup of a period in its node's
// bucket: the period's key, then the probe's name.
func periodKey(period []byte, probe string) []byte {
	return append(append(make([]byte, 0, periodLen+len(probe)), period...), probe...)
}

// splitPeriodKey is the period and the probe of a rollup's key; false
// for a key not so made.
func splitPeriodKey(k []byte) (period, probe []byte, ok bool) {
	if len(k) <= periodLen {
		return nil, nil, false
	}
	return k[:periodLen], k[periodLen:], true
}

// Default history retention (a zero Retention.HourlyAge or WeeklyAge).
const (
	DefaultHourlyAge = 40 * 24 * time.Hour
	DefaultWeeklyAge = 54 * 7 * 24 * time.Hour
)

// Limits on what a rollup keeps of a result's measured values.
const (
	maxRollupValues   = 8
	maxRollupValueKey = 64
	maxRollupPhases   = 16
	maxPhaseName      = 64
)

// latencyBounds are the upper bounds (inclusive, in milliseconds) of the
// latency histogram's buckets; one more bucket holds what is above the
// last. They are fixed: changing them would make stored histograms
// unreadable.
var latencyBounds = [...]int64{1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
	1000, 1500, 2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000, 60000}

// LatencyBuckets is the number of buckets of a Histogram.
const LatencyBuckets = len(latencyBounds) + 1

// LatencyBounds returns the upper bounds of the histogram's buckets in
// milliseconds (a copy); the last bucket has no upper bound.
func LatencyBounds() []int64 { return append([]int64(nil), latencyBounds[:]...) }

// Histogram counts latencies in the fixed buckets of LatencyBounds.
type Histogram [LatencyBuckets]int64

// latencyBucket is the bucket of a latency in milliseconds.
func latencyBucket(ms int64) int {
	return sort.Search(len(latencyBounds), func(i int) bool { return latencyBounds[i] >= ms })
}

// Total is the number of latencies counted.
func (h *Histogram) Total() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// MarshalJSON writes the counts without the trailing zero buckets.
func (h Histogram) MarshalJSON() ([]byte, error) {
	n := len(h)
	for n > 0 && h[n-1] == 0 {
		n--
	}
	return json.Marshal(h[:n])
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var s []int64
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if len(s) > len(h) {
		return fmt.Errorf("latency histogram has %d buckets, at most %d", len(s), len(h))
	}
	*h = Histogram{}
	copy(h[:], s)
	return nil
}

// Percentile estimates the p-th percentile (0 < p <= 100) in milliseconds
// by linear interpolation inside the bucket the rank falls in, clamped to
// [min, max] (the smallest and largest latency seen). It returns false
// when the histogram is empty.
func (h *Histogram) Percentile(p float64, min, max int64) (float64, bool) {
	total := h.Total()
	if total == 0 {
		return 0, false
	}
	rank := math.Ceil(p / 100 * float64(total))
	if rank < 1 {
		rank = 1
	}
	var seen float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		lo, hi := float64(0), float64(max)
		if i > 0 {
			lo = float64(latencyBounds[i-1])
		}
		if i < len(latencyBounds) {
			hi = float64(latencyBounds[i])
		}
		v := lo + (hi-lo)*(rank-seen)/float64(c)
		return math.Min(math.Max(v, float64(min)), float64(max)), true
	}
	return float64(max), true
}

// ValueStat sums up one measured value ("free_percent", "latency_ms") over
// a rollup's results: its smallest, largest and last reading.
type ValueStat struct {
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Last   float64   `json:"last"`
	LastAt time.Time `json:"last_at"`
}

// Rollup sums up the results of one probe on one node over an hour or an
// ISO week.
type Rollup struct {
	Node  string    `json:"node"`
	Probe string    `json:"probe"`
	Kind  string    `json:"kind,omitempty"`
	Start time.Time `json:"start"` // the hour, or Monday 00:00 of the week, UTC
	// Count is the number of results, Failures those not OK.
	Count    int64 `json:"count"`
	Failures int64 `json:"failures"`
	// FailedPhases counts the failures by the phase that failed ("" when
	// no phase was named).
	FailedPhases map[string]int64 `json:"failed_phases,omitempty"`
	Latency      Histogram        `json:"latency"` // of DurationMS
	MinMS        int64            `json:"min_ms"`
	MaxMS        int64            `json:"max_ms"`
	SumMS        int64            `json:"sum_ms"`
	// First and Last are the start times of the first and last result.
	First  time.Time            `json:"first"`
	Last   time.Time            `json:"last"`
	Values map[string]ValueStat `json:"values,omitempty"`
	// Damaged: a stored record of this rollup could not be read and was
	// started again; the counts miss what it held.
	Damaged bool `json:"damaged,omitempty"`
}

// Add counts one result in the rollup.
func (r *Rollup) Add(res StoredResult) {
	ms := max(res.DurationMS, 0)
	if r.Count == 0 || ms < r.MinMS {
		r.MinMS = ms
	}
	r.MaxMS = max(r.MaxMS, ms)
	r.Count++
	r.SumMS += ms
	r.Latency[latencyBucket(ms)]++
	if r.Kind == "" {
		r.Kind = res.Kind
	}
	if !res.OK {
		r.Failures++
		phase := res.FailedPhase
		if len(phase) > maxPhaseName {
			phase = phase[:maxPhaseName]
		}
		if r.FailedPhases == nil {
			r.FailedPhases = map[string]int64{}
		}
		if _, ok := r.FailedPhases[phase]; ok || len(r.FailedPhases) < maxRollupPhases {
			r.FailedPhases[phase]++
		} else {
			r.FailedPhases["(other)"]++
		}
	}
	if r.First.IsZero() || res.Start.Before(r.First) {
		r.First = res.Start.UTC()
	}
	if res.Start.After(r.Last) {
		r.Last = res.Start.UTC()
	}
	for k, s := range res.Values {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || len(k) > maxRollupValueKey {
			continue
		}
		r.addValue(k, ValueStat{Min: v, Max: v, Last: v, LastAt: res.Start.UTC()})
	}
}

func (r *Rollup) addValue(k string, v ValueStat) {
	old, ok := r.Values[k]
	if !ok {
		if len(r.Values) >= maxRollupValues {
			return
		}
		if r.Values == nil {
			r.Values = map[string]ValueStat{}
		}
		r.Values[k] = v
		return
	}
	old.Min, old.Max = math.Min(old.Min, v.Min), math.Max(old.Max, v.Max)
	if !v.LastAt.Before(old.LastAt) {
		old.Last, old.LastAt = v.Last, v.LastAt
	}
	r.Values[k] = old
}

// Merge adds the counts of o (another period, or the same one) to r. The
// node, probe and start of r stay.
func (r *Rollup) Merge(o Rollup) {
	if o.Count == 0 {
		r.Damaged = r.Damaged || o.Damaged
		return
	}
	if r.Count == 0 || o.MinMS < r.MinMS {
		r.MinMS = o.MinMS
	}
	r.MaxMS = max(r.MaxMS, o.MaxMS)
	r.Count += o.Count
	r.Failures += o.Failures
	r.SumMS += o.SumMS
	for i, c := range o.Latency {
		r.Latency[i] += c
	}
	for k, n := range o.FailedPhases {
		if r.FailedPhases == nil {
			r.FailedPhases = map[string]int64{}
		}
		if _, ok := r.FailedPhases[k]; ok || len(r.FailedPhases) < maxRollupPhases {
			r.FailedPhases[k] += n
		} else {
			r.FailedPhases["(other)"] += n
		}
	}
	if r.First.IsZero() || (!o.First.IsZero() && o.First.Before(r.First)) {
		r.First = o.First
	}
	if o.Last.After(r.Last) {
		r.Last = o.Last
	}
	if r.Kind == "" {
		r.Kind = o.Kind
	}
	for k, v := range o.Values {
		r.addValue(k, v)
	}
	r.Damaged = r.Damaged || o.Damaged
}

// Percentile is the p-th percentile of the latency in milliseconds (see
// Histogram.Percentile); false when the rollup is empty.
func (r *Rollup) Percentile(p float64) (float64, bool) {
	return r.Latency.Percentile(p, r.MinMS, r.MaxMS)
}

// ---------------------------------------------------------------- keys

// HourStart is the start of t's hour in UTC.
func HourStart(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// WeekStart is Monday 00:00 UTC of t's ISO week.
func WeekStart(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	back := (int(day.Weekday()) + 6) % 7 // days since Monday
	return day.AddDate(0, 0, -back)
}

// WeekKey names t's ISO week in UTC, e.g. "2026-W49".
func WeekKey(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

var weekKeyRE = regexp.MustCompile(`^[0-9]{4}-W[0-9]{2}$`)

// ValidWeekKey says whether k is written as WeekKey writes.
func ValidWeekKey(k string) bool { return weekKeyRE.MatchString(k) }

// hourKey is the key of an hourly rollup: the hour's Unix seconds with the
// sign bit flipped, big-endian, so that keys sort in time order.
func hourKey(t time.Time) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(HourStart(t).Unix())^(1<<63))
	return k[:]
}

func hourOfKey(k []byte) time.Time {
	if len(k) != 8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(k)^(1<<63)), 0).UTC()
}

// ---------------------------------------------------------------- writing

type rollupKey struct {
	node, probe string
	period      string // string(hourKey) or the week key
}

// rollIn adds results to their hourly and weekly rollups inside tx (the
// transaction that stores them). Results of one period are summed first,
// so each stored rollup is read and written once.
func rollIn(tx *bolt.Tx, rs []StoredResult) error { return rollInCached(tx, rs, nil) }

// rollInCached is rollIn that takes the stored rollups it merges into from
// c when they are the ones it last wrote (nil: none).
func rollInCached(tx *bolt.Tx, rs []StoredResult, c *rollupCache) error {
	hours := map[rollupKey]*Rollup{}
	weeks := map[rollupKey]*Rollup{}
	add := func(m map[rollupKey]*Rollup, k rollupKey, start time.Time, r StoredResult) {
		ru := m[k]
		if ru == nil {
			ru = &Rollup{Node: r.Node, Probe: r.Probe, Start: start}
			m[k] = ru
		}
		ru.Add(r)
	}
	for _, r := range rs {
		add(hours, rollupKey{r.Node, r.Probe, string(hourKey(r.Start))}, HourStart(r.Start), r)
		add(weeks, rollupKey{r.Node, r.Probe, WeekKey(r.Start)}, WeekStart(r.Start), r)
	}
	if err := mergeRollupsCached(tx.Bucket(bucketHourly), hours, c.of(bucketHourly)); err != nil {
		return err
	}
	return mergeRollupsCached(tx.Bucket(bucketWeekly), weeks, c.of(bucketWeekly))
}

// mergeRollups merges each rollup into the one stored under its key. A
// stored record that cannot be read is replaced, marked Damaged: the
// results being stored must not fail for it.
func mergeRollups(b *bolt.Bucket, m map[rollupKey]*Rollup) error {
	return mergeRollupsCached(b, m, nil)
}

// mergeRollupsCached is mergeRollups that decodes a stored record only
// when c (nil: none) does not hold it as it was last written.
func mergeRollupsCached(b *bolt.Bucket, m map[rollupKey]*Rollup, c map[rollupSlot]cachedRollup) error {
	keys := make([]rollupKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { // a fixed order of writes
		a, b := keys[i], keys[j]
		if a.node != b.node {
			return a.node < b.node
		}
		if a.probe != b.probe {
			return a.probe < b.probe
		}
		return a.period < b.period
	})
	for _, k := range keys {
		nb, err := b.CreateBucketIfNotExists([]byte(k.node))
		if err != nil {
			return err
		}
		nb.FillPercent = appendFill // periods are written in time order
		ru := m[k]
		slot := rollupSlot{k.node, k.probe}
		key := periodKey([]byte(k.period), k.probe)
		if v := nb.Get(key); v != nil {
			var old Rollup
			if cr, ok := c[slot]; ok && cr.period == k.period && bytes.Equal(cr.enc, v) {
				old = cr.ru.clone()
				old.Merge(*ru)
				ru = &old
			} else if old, err = decodeRollup(v); err != nil {
				ru.Damaged = true
			} else {
				old.Merge(*ru)
				ru = &old
			}
		}
		v := encodeRollup(*ru)
		if err := nb.Put(key, v); err != nil {
			return err
		}
		if c != nil {
			c[slot] = cachedRollup{period: k.period, enc: v, ru: ru.clone()}
		}
	}
	return nil
}

// rollupCache holds, of each probe of each node, the hourly and the weekly
// rollup last written, decoded: the next results of the same hour or week
// merge into it instead of decoding the stored record again (two JSON
// decodes per probe per round, for this node's results and the peer's).
// An entry stands for the stored record only while the stored bytes are
// the bytes it was written as, so a record changed or removed otherwise
// (pruning, a transaction rolled back) is decoded afresh. The zero value
// is empty; it is used in PutResults' transaction only, under bbolt's
// writer lock.
type rollupCache struct {
	hourly, weekly map[rollupSlot]cachedRollup
}

type rollupSlot struct{ node, probe string }

type cachedRollup struct {
	period string
	enc    []byte
	ru     Rollup
}

// of is the cache of the bucket named name (nil for a nil cache).
func (c *rollupCache) of(name []byte) map[rollupSlot]cachedRollup {
	if c == nil {
		return nil
	}
	p := &c.weekly
	if bytes.Equal(name, bucketHourly) {
		p = &c.hourly
	}
	if *p == nil {
		*p = map[rollupSlot]cachedRollup{}
	}
	return *p
}

// clone is a copy of r that shares no map with it.
func (r Rollup) clone() Rollup {
	r.FailedPhases = maps.Clone(r.FailedPhases)
	r.Values = maps.Clone(r.Values)
	return r
}

// migrateRollups moves the rollups a build before kept in a bucket per
// probe (bucketHourlyByProbe, bucketWeeklyByProbe) into their node's
// bucket, merged into a rollup already there for the same period and probe
// (a build before run again after this one), and deletes the old buckets.
// A record that cannot be read is not moved: it was lost already (a damaged
// rollup is replaced when results are merged into it).
func migrateRollups(tx *bolt.Tx) (moved int, err error) {
	for _, m := range []struct{ from, to []byte }{{bucketHourlyByProbe, bucketHourly}, {bucketWeeklyByProbe, bucketWeekly}} {
		old := tx.Bucket(m.from)
		if old == nil {
			continue
		}
		to, err := tx.CreateBucketIfNotExists(m.to)
		if err != nil {
			return moved, err
		}
		err = old.ForEachBucket(func(node []byte) error {
			ob := old.Bucket(node)
			nb, err := to.CreateBucketIfNotExists(node)
			if err != nil {
				return err
			}
			return ob.ForEachBucket(func(probe []byte) error {
				return ob.Bucket(probe).ForEach(func(period, v []byte) error {
					if len(period) != periodLen {
						return nil
					}
					ru, err := decodeRollup(v)
					if err != nil {
						return nil
					}
					key := periodKey(period, string(probe))
					if cur := nb.Get(key); cur != nil {
						if have, err := decodeRollup(cur); err == nil {
							have.Merge(ru)
							ru = have
						}
					}
					moved++
					return nb.Put(key, encodeRollup(ru))
				})
			})
		})
		if err != nil {
			return moved, fmt.Errorf("move the rollups of %s: %w", m.from, err)
		}
		if err := tx.DeleteBucket(m.from); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// ---------------------------------------------------------------- pruning

// pruneHistory drops hourly rollups older than r.HourlyAge and weekly
// rollups and stored reports older than r.WeeklyAge (zero: the defaults).
func pruneHistory(tx *bolt.Tx, now time.Time, r Retention) (int, error) {
	hourly, weekly := r.HourlyAge, r.WeeklyAge
	if hourly <= 0 {
		hourly = DefaultHourlyAge
	}
	if weekly <= 0 {
		weekly = DefaultWeeklyAge
	}
	hourCut := hourKey(now.Add(-hourly))
	weekCut := WeekStart(now.Add(-weekly))
	n, err := prunePeriods(tx.Bucket(bucketHourly), func(k []byte) bool { return bytes.Compare(k, hourCut) < 0 })
	if err != nil {
		return n, err
	}
	oldWeek := func(k []byte) bool {
		start, err := WeekStartOf(string(k))
		return err == nil && start.Before(weekCut)
	}
	m, err := prunePeriods(tx.Bucket(bucketWeekly), oldWeek)
	n += m
	if err != nil {
		return n, err
	}
	var drop [][]byte
	rb := tx.Bucket(bucketReports)
	if err := rb.ForEach(func(k, _ []byte) error {
		if oldWeek(k) {
			drop = append(drop, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return n, err
	}
	for _, k := range drop {
		if err := rb.Delete(k); err != nil {
			return n, err
		}
	}
	return n + len(drop), nil
}

// prunePeriods deletes, in every node's bucket, the rollups whose period
// old says is old (the keys sort in time order: from the first on), and
// the nodes left empty.
func prunePeriods(b *bolt.Bucket, old func(period []byte) bool) (int, error) {
	deleted := 0
	var nodes [][]byte
	if err := b.ForEachBucket(func(k []byte) error { nodes = append(nodes, bytes.Clone(k)); return nil }); err != nil {
		return 0, err
	}
	for _, node := range nodes {
		nb := b.Bucket(node)
		var drop [][]byte
		c := nb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			period, _, ok := splitPeriodKey(k)
			if ok && !old(period) {
				break
			}
			drop = append(drop, bytes.Clone(k)) // old, or not a rollup's key
		}
		for _, k := range drop {
			if err := nb.Delete(k); err != nil {
				return deleted, err
			}
		}
		deleted += len(drop)
		if k, _ := nb.Cursor().First(); k == nil {
			if err := b.DeleteBucket(node); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

// WeekStartOf is Monday 00:00 UTC of the ISO week k ("2026-W49"). It fails
// for a key not so written, or a week the year does not have.
func WeekStartOf(k string) (time.Time, error) {
	if !ValidWeekKey(k) {
		return time.Time{}, fmt.Errorf("week %q is not written as 2026-W49", k)
	}
	y, _ := strconv.Atoi(k[:4])
	w, _ := strconv.Atoi(k[6:])
	// January 4th is always in week 1.
	start := WeekStart(time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)).AddDate(0, 0, 7*(w-1))
	if w < 1 || WeekKey(start) != k {
		return time.Time{}, fmt.Errorf("week %q does not exist (%d has %d ISO weeks)", k, y, weeksIn(y))
	}
	return start, nil
}

func weeksIn(y int) int {
	_, w := time.Date(y, 12, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
	return w
}
