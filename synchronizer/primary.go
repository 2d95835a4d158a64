package synchronizer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Primary watches the tracked paths and commits what changes.
type Primary struct {
	Repo     *Repo
	Log      *slog.Logger
	Debounce time.Duration
	Rescan   time.Duration
	// OnCommit is called after each commit (the agent records an event and
	// tells the secondary at once).
	OnCommit func(*CommitResult)

	mu      sync.Mutex
	watched map[string]bool
	w       *fsnotify.Watcher
}

// Run takes the first snapshot, then watches until ctx ends.
func (p *Primary) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	p.w, p.watched = w, map[string]bool{}
	// Watch first, scan second: an edit made while the first scan runs is
	// then an event, not a loss.
	p.watchTrees()
	// A repository that lost objects in a power cut is repaired first
	// (unless the agent did), and says so: CommitResult.Repaired.
	if !p.Repo.startChecked() {
		res, err := p.Repo.repair(time.Now())
		if err != nil {
			p.Log.Error("config repository check", "err", err)
		} else if res != nil {
			p.Log.Warn(res.Repaired)
			if p.OnCommit != nil {
				p.OnCommit(res)
			}
		}
	}
	if err := p.Repo.ScanAll(); err != nil {
		p.Log.Warn("config scan", "err", err)
	}
	p.commit("snapshot at agent start")
	p.syncWatches()

	pending := map[string]bool{}
	var fire <-chan time.Time
	var timer *time.Timer
	var q quiet
	events := 0 // of the burst, for the debug line
	rescan := time.NewTicker(p.Rescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if !p.concerns(ev.Name) {
				continue
			}
			pending[ev.Name] = true
			events++
			// Quick edits coalesce: the commit waits for a quiet moment,
			// short after a lone edit, longer while a burst goes on.
			wait := q.nextEvent(ev, time.Now(), p.Debounce)
			if timer == nil {
				timer = time.NewTimer(wait)
				fire = timer.C
			} else {
				timer.Reset(wait)
			}
		case err := <-w.Errors:
			// Typically a queue overflow or max_user_watches: the rescan
			// catches up, so say it and go on.
			p.Log.Warn("file watcher", "err", err)
		case <-fire:
			timer, fire = nil, nil
			burst, n, fired := q, events, time.Now()
			q, events = quiet{}, 0
			for path := range pending {
				if err := p.Repo.Update(path); err != nil {
					p.Log.Warn("config update", "path", path, "err", err)
				}
			}
			pending = map[string]bool{}
			p.commit("change seen by the watcher")
			// Where the time of a change goes (bench/synclatency reads
			// it from the journal at log level debug).
			p.Log.Debug("config watcher: burst committed", "first_event", stamp(burst.first), "last_event", stamp(burst.last),
				"fired", stamp(fired), "events", n, "edits", burst.edits, "window", burst.window.String(),
				"commit_ms", fmt.Sprintf("%.1f", float64(time.Since(fired).Microseconds())/1000), "trace", strings.Join(burst.trace, "; "))
			// A new directory's files may have changed between the walk
			// and its watch: look at newly watched directories once more.
			for _, d := range p.syncWatches() {
				pending[d] = true
			}
			if len(pending) > 0 {
				timer = time.NewTimer(q.next(time.Now(), p.Debounce))
				fire = timer.C
			}
		case <-rescan.C:
			if err := p.Repo.ScanAll(); err != nil {
				p.Log.Warn("config rescan", "err", err)
			}
			p.commit("periodic rescan")
			p.syncWatches()
		}
	}
}

func (p *Primary) commit(why string) {
	res, err := p.Repo.Commit(why, time.Now())
	var damage *DamageError
	if errors.As(err, &damage) {
		// The head lost objects (a power loss): repaired, and said so.
		p.Log.Error("config commit: the repository is damaged: repairing", "err", err)
		res, err = p.Repo.repair(time.Now())
		if err == nil && res != nil {
			p.Log.Warn(res.Repaired)
		}
	}
	if err != nil {
		p.Log.Error("config commit", "err", err)
		return
	}
	if res != nil && p.OnCommit != nil {
		p.OnCommit(res)
	}
}

// concerns says whether a watcher event's path can be tracked: under a
// root, a root, or a folder on the way to one. The folder watched for a
// tracked single file, or for a root that does not exist yet, reports its
// other entries too: the agent's own store (/var/lib/sentry/state.db,
// beside the modules' /var/lib/sentry/modules), written at every event
// and probe result, and /etc/sentry/sentry.toml (beside modules.toml).
// Those are no change to commit, and taken as one they started the quiet
// window early and widened it as further edits: in the lab, with each
// edit made as soon as the last was served, 6 sed -i of 20 waited 300 ms
// to 1 s instead of 150 ms (bench/synclatency).
func (p *Primary) concerns(path string) bool {
	path = filepath.Clean(path)
	for _, r := range p.Repo.policy.Roots {
		r = filepath.Clean(r)
		if r == "/" || path == r || strings.HasPrefix(path, r+"/") || strings.HasPrefix(r, path+"/") {
			return true
		}
	}
	return false
}

// watchTrees watches every directory under the roots, before the model
// knows them.
func (p *Primary) watchTrees() {
	for _, r := range p.Repo.policy.Roots {
		filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && !p.watched[path] {
				if p.w.Add(path) == nil {
					p.watched[path] = true
				}
			}
			return nil
		})
	}
}

// syncWatches watches every tracked directory, and the parent directory of
// each tracked single file (editors replace files by rename). It returns
// the directories it started to watch.
func (p *Primary) syncWatches() []string {
	want := map[string]bool{}
	p.Repo.mu.Lock()
	for path, e := range p.Repo.entries {
		if e.Type == TypeDir {
			want[path] = true
		}
	}
	p.Repo.mu.Unlock()
	for _, r := range p.Repo.policy.Roots {
		if fi, err := os.Stat(r); err == nil && !fi.IsDir() {
			want[filepath.Dir(r)] = true
		} else if err != nil {
			want[filepath.Dir(r)] = true // appears later
		}
	}
	var added []string
	for d := range want {
		if !p.watched[d] {
			if err := p.w.Add(d); err == nil {
				p.watched[d] = true
				added = append(added, d)
			}
		}
	}
	for d := range p.watched {
		if !want[d] {
			p.w.Remove(d)
			delete(p.watched, d)
		}
	}
	return added
}

// MinQuiet is the quiet moment after a lone edit: the commit follows it
// this soon (sync.debounce when that is shorter).
const MinQuiet = 150 * time.Millisecond

// EditGap tells one edit from the next: the watcher's events closer than
// this to the one before belong to the same edit (`sed -i` alone makes a
// temp file, writes, renames it over the file: five events or so within
// a few milliseconds).
const EditGap = 50 * time.Millisecond

// quiet is the debounce of one burst of edits: the window starts at
// MinQuiet and doubles with each further edit that comes within it (an
// event at least EditGap after the one before), up to max
// (sync.debounce), so a lone edit is committed at once and a burst of a
// thousand makes a handful of commits; a burst that never pauses is
// committed every 10 x max all the same.
type quiet struct {
	first  time.Time // the burst's first event
	last   time.Time // its last event
	window time.Duration
	edits  int      // edits counted, the first included
	trace  []string // the first events, for the debug line
}

// stamp is a time as the debug line gives it (the journal's own stamp is
// when the line was written).
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// nextEvent is next for the watcher's event ev, noted for the debug line.
func (q *quiet) nextEvent(ev fsnotify.Event, now time.Time, max time.Duration) time.Duration {
	w := q.next(now, max)
	if len(q.trace) < 12 {
		q.trace = append(q.trace, fmt.Sprintf("%s %s +%.1fms", ev.Op, ev.Name, float64(now.Sub(q.first).Microseconds())/1000))
	}
	return w
}

// next is the wait after an event at now.
func (q *quiet) next(now time.Time, max time.Duration) time.Duration {
	min := MinQuiet
	if max < min {
		min = max
	}
	if q.first.IsZero() {
		q.first, q.last, q.window, q.edits = now, now, min, 1
		return q.window
	}
	if now.Sub(q.last) >= EditGap { // another edit, not more of the same
		q.edits++
		if q.window *= 2; q.window > max {
			q.window = max
		}
	}
	q.last = now
	if left := q.first.Add(10 * max).Sub(now); left < q.window {
		if left < 0 {
			left = 0
		}
		return left
	}
	return q.window
}
