package agent

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// reloadGrace: after a reload's end a probe may still meet the service
// replacing its workers (dovecot closes the connections of its old
// processes), so a probe that ran this soon after still counts as
// disturbed.
const reloadGrace = 5 * time.Second

// reloadKeep bounds how long a reload is remembered.
const reloadKeep = 2 * time.Minute

// reloadLog remembers which units the configuration sync reloaded, and
// when, so that the verifier can tell a red caused by that reload from a
// fault. A sync under way is a mark without an end yet: its units are known
// only when it ends. It owns its state behind its own lock.
type reloadLog struct {
	mu    sync.Mutex
	marks []*reloadMark
	idle  chan struct{} // closed when no sync is under way; nil: none ever was
}

type reloadMark struct {
	units    []string
	from, to time.Time // to is zero while the sync is under way
}

// begin records that a sync (which may reload units) starts now; end,
// called once, records what it reloaded.
func (l *reloadLog) begin() (end func(units []string)) {
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

// note records that units were reloaded between from and to.
func (l *reloadLog) note(units []string, from, to time.Time) {
	if len(units) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks = append(l.marks, &reloadMark{units: slices.Clone(units), from: from, to: to})
}

func (l *reloadLog) ongoingLocked() int {
	n := 0
	for _, m := range l.marks {
		if m.to.IsZero() {
			n++
		}
	}
	return n
}

// waitIdle waits, at most bound, until no sync is under way.
func (l *reloadLog) waitIdle(ctx context.Context, bound time.Duration) error {
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

// syncUnderWay stands for the units of a sync still under way.
const syncUnderWay = "(a configuration sync under way)"

// disturbed lists the units reloaded while a probe ran from start to end
// (or within reloadGrace before it started), among deps, the units the
// probe depends on (nil: any unit). A sync still under way counts as
// reloading all of deps.
func (l *reloadLog) disturbed(start, end time.Time, deps []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range l.marks {
		if m.from.After(end) {
			continue
		}
		if m.to.IsZero() {
			if deps == nil {
				seen[syncUnderWay] = true
			}
			for _, u := range deps {
				seen[u] = true
			}
			continue
		}
		if m.to.Add(reloadGrace).Before(start) {
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
