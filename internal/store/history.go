package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// History reads the rollups and keeps the weekly reports. It is the
// store's view for the weekly report; get one with Store.History.
type History struct{ s *Store }

// History returns the store's history view.
func (s *Store) History() *History { return &History{s: s} }

// Hourly returns the hourly rollups of every node and probe whose hour
// starts in [from, to), ordered by node, probe and hour.
func (h *History) Hourly(from, to time.Time) ([]Rollup, error) {
	var out []Rollup
	lo, hi := hourKey(from), hourKey(to)
	if HourStart(from).Before(from) { // an hour started before from is not in
		lo = hourKey(from.Add(time.Hour))
	}
	err := h.s.db.View(func(tx *bolt.Tx) error {
		return forEachNode(tx.Bucket(bucketHourly), func(node []byte, nb *bolt.Bucket) error {
			first := len(out)
			c := nb.Cursor()
			for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
				hour, probe, ok := splitPeriodKey(k)
				if !ok {
					continue
				}
				r, err := decodeRollup(v)
				if err != nil {
					return fmt.Errorf("hourly rollup %s/%s %s: %w", node, probe, hourOfKey(hour).Format(time.RFC3339), err)
				}
				out = append(out, r)
			}
			// The node's bucket is in hour order: by probe, then hour.
			slices.SortStableFunc(out[first:], func(a, b Rollup) int { return strings.Compare(a.Probe, b.Probe) })
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read hourly rollups: %w", h.s.path, err)
	}
	return out, nil
}

// Weekly returns the weekly rollups of the ISO week ("2026-W49") of every
// node and probe, ordered by node and probe.
func (h *History) Weekly(week string) ([]Rollup, error) {
	if !ValidWeekKey(week) {
		return nil, fmt.Errorf("store %s: weekly rollups: week %q is not written as 2026-W49", h.s.path, week)
	}
	var out []Rollup
	err := h.s.db.View(func(tx *bolt.Tx) error {
		return forEachNode(tx.Bucket(bucketWeekly), func(node []byte, nb *bolt.Bucket) error {
			c := nb.Cursor()
			for k, v := c.Seek([]byte(week)); k != nil && bytes.HasPrefix(k, []byte(week)); k, v = c.Next() {
				_, probe, ok := splitPeriodKey(k)
				if !ok {
					continue
				}
				r, err := decodeRollup(v)
				if err != nil {
					return fmt.Errorf("weekly rollup %s/%s %s: %w", node, probe, week, err)
				}
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read weekly rollups of %s: %w", h.s.path, week, err)
	}
	return out, nil
}

// First returns the start of the oldest result the history holds (the
// first result of the oldest hourly or weekly rollup); false when it
// holds none.
func (h *History) First() (time.Time, bool, error) {
	var first time.Time
	err := h.s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketHourly, bucketWeekly} {
			err := forEachNode(tx.Bucket(name), func(node []byte, nb *bolt.Bucket) error {
				// The oldest period's rollups, of each probe that has one.
				c := nb.Cursor()
				k, v := c.First()
				if k == nil || len(k) <= periodLen {
					return nil
				}
				period := bytes.Clone(k[:periodLen])
				for ; k != nil && bytes.HasPrefix(k, period); k, v = c.Next() {
					r, err := decodeRollup(v)
					if err != nil {
						return fmt.Errorf("rollup %s %s %x: %w", name, node, k, err)
					}
					t := r.First
					if t.IsZero() {
						t = r.Start
					}
					if first.IsZero() || t.Before(first) {
						first = t
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store %s: first history: %w", h.s.path, err)
	}
	return first, !first.IsZero(), nil
}

// PutReport stores the weekly report document of week ("2026-W49"),
// replacing one stored before.
func (h *History) PutReport(week string, b []byte) error {
	if !ValidWeekKey(week) {
		return fmt.Errorf("store %s: put report: week %q is not written as 2026-W49", h.s.path, week)
	}
	if len(b) == 0 {
		return fmt.Errorf("store %s: put report %s: empty document", h.s.path, week)
	}
	return h.s.putOne(bucketReports, []byte(week), b, "report "+week)
}

// Report returns the stored report document of week, or nil if none.
func (h *History) Report(week string) ([]byte, error) {
	return h.s.getOne(bucketReports, []byte(week), "report "+week)
}

// StoredReport is one stored report document, as stored.
type StoredReport struct {
	Week string
	Doc  []byte
}

// Reports returns every stored report document, newest week first.
func (h *History) Reports() ([]StoredReport, error) {
	var out []StoredReport
	err := h.s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReports).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			out = append(out, StoredReport{Week: string(k), Doc: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read reports: %w", h.s.path, err)
	}
	return out, nil
}

// Events returns the events of the given kinds, oldest (by sequence)
// first. Only the events of those kinds are decoded: the kind is read
// from the stored JSON first (AppendEvent writes it before the message),
// so that the report finds the few kinds it needs in a log of up to
// 100,000 events quickly.
func (h *History) Events(kinds ...string) ([]Event, error) {
	var out []Event
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	mark := []byte(`"kind":"`)
	err := h.s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			if i := bytes.Index(v, mark); i >= 0 {
				rest := v[i+len(mark):]
				if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 && !want[string(rest[:j])] {
					return nil // another kind
				}
			}
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			if want[e.Kind] {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read events: %w", h.s.path, err)
	}
	return out, nil
}

// forEachNode calls fn for each node's bucket of b.
func forEachNode(b *bolt.Bucket, fn func(node []byte, nb *bolt.Bucket) error) error {
	return b.ForEachBucket(func(node []byte) error { return fn(node, b.Bucket(node)) })
}
