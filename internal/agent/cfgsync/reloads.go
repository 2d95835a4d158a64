package cfgsync

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// ReloadGrace: after a reload's end a probe may still meet the service
// replacing its workers (dovecot closes the connections of its old
// processes), so a probe that ran this soon after still counts as
// disturbed.
const ReloadGrace = 5 * time.Second

// reloadKeep bounds how long a reload is remembered.
const reloadKeep = 2 * time.Minute

// ReloadLog remembers which units the configuration sync reloaded, and
// when, so that the verifier can tell a red caused by that reload from a
// fault. A sync under way is a mark without an end yet: its units are known
// only when it ends. It owns its state behind its own lock.
type ReloadLog struct {
	mu    sync.Mutex
	marks []*reloadMark
	idle  chan struct{} // closed when no sync is under way; nil: none ever was
}

type reloadMark struct {
	units    []string
	from, to time.Time // to is zero while the sync is under way
}

// Begin records that a sync (which may reload units) starts now; end,
// called once, records what it reloaded.
func (l *ReloadLog) Begin() (end func(units []string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := &reloadMark{from: time.Now()}
	l.marks = append(l.marks, m)
	if l.idle == nil || l.ongoingLocked() == 1 {
		l.idle = make(chan struct{})
	}
	return func(units []string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		m.units, m.to = slices.Clone(units), time.Now()
		keep := l.marks[:0]
		for _, x := range l.marks {
			if len(x.units) > 0 && time.Since(x.to) < reloadKeep || x.to.IsZero() {
				keep = append(keep, x)
			}
		}
		l.marks = keep
		if l.ongoingLocked() == 0 {
			close(l.idle)
		}
	}
}

// Note records that units were reloaded between from and to.
func (l *ReloadLog) Note(units []string, from, to time.Time) {
	if len(units) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks = append(l.marks, &reloadMark{units: slices.Clone(units), from: from, to: to})
}

func (l *ReloadLog) ongoingLocked() int {
	n := 0
	for _, m := range l.marks {
		if m.to.IsZero() {
			n++
		}
	}
	return n
}

// WaitIdle waits, at most bound, until no sync is under way.
func (l *ReloadLog) WaitIdle(ctx context.Context, bound time.Duration) error {
	l.mu.Lock()
	idle, busy := l.idle, l.ongoingLocked() > 0
	l.mu.Unlock()
	if !busy {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-time.After(bound):
		return fmt.Errorf("the configuration sync still runs after %s", bound)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SyncUnderWay stands for the units of a sync still under way.
const SyncUnderWay = "(a configuration sync under way)"

// Disturbed lists the units reloaded while a probe ran from start to end
// (or within ReloadGrace before it started), among deps, the units the
// probe depends on (nil: any unit). A sync still under way counts as
// reloading all of deps.
func (l *ReloadLog) Disturbed(start, end time.Time, deps []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range l.marks {
		if m.from.After(end) {
			continue
		}
		if m.to.IsZero() {
			if deps == nil {
				seen[SyncUnderWay] = true
			}
			for _, u := range deps {
				seen[u] = true
			}
			continue
		}
		if m.to.Add(ReloadGrace).Before(start) {
			continue
		}
		for _, u := range m.units {
			if deps == nil || slices.Contains(deps, u) {
				seen[u] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
