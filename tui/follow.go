package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sentryha/sentry/internal/store"
)

// eventMsg is one event of the agent's stream.
type eventMsg struct{ ev store.Event }

// upMsg: the agent answers (again); the UI refetches what it shows.
type upMsg struct{}

// downMsg: the agent does not answer, or its stream ended; it is tried
// again after wait.
type downMsg struct {
	err  error
	wait time.Duration
}

// tickMsg makes the UI redraw the ages it shows, and refetch the newest
// results while the Services screen is shown (the agent records no event
// for a verifier round that changes nothing).
type tickMsg struct{}

// Backoff is how long Follow waits before it tries the agent again: Min
// after a connection that worked, doubling up to Max.
type Backoff struct{ Min, Max time.Duration }

// DefaultBackoff is the backoff of Run.
func DefaultBackoff() Backoff { return Backoff{Min: time.Second, Max: 30 * time.Second} }

// Follow follows the agent's event stream until ctx ends, and sends the UI
// what happens: the agent up, each event, the agent down (with when it
// tries again). It reconnects by itself, resuming after the last event it
// gave. It sends a tick every tick (none when tick is 0).
func Follow(ctx context.Context, a Agent, send func(tea.Msg), b Backoff, tick time.Duration) {
	if tick > 0 {
		go func() {
			t := time.NewTicker(tick)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					send(tickMsg{})
				}
			}
		}()
	}
	wait := b.Min
	var since uint64
	known := false
	for ctx.Err() == nil {
		// The newest event tells where the stream begins, and that the
		// agent answers.
		evs, err := a.Events(ctx, 1)
		if err == nil {
			if !known && len(evs) > 0 {
				since = evs[len(evs)-1].Seq
			}
			known = true
			wait = b.Min
			send(upMsg{})
			for ev, serr := range a.Subscribe(ctx, since) {
				if serr != nil {
					err = serr
					break
				}
				since = ev.Seq
				send(eventMsg{ev})
			}
		}
		if ctx.Err() != nil {
			return
		}
		send(downMsg{err: err, wait: wait})
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, b.Max)
	}
}
