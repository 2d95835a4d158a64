package tui

import (
	"context"
	"io"
	"os"
	"runtime/debug"
	"time"

	tea "charm.land/bubbletea/v2"
)

// tickEvery is how often the UI redraws the ages it shows and refetches
// the newest results on the Services screen.
const tickEvery = 15 * time.Second

// memoryLimit is the soft limit of the Go runtime's memory while the UI
// runs (GOMEMLIMIT, when set, wins). What the UI keeps is a few MB (a
// day of results is kept as series, 17 bytes each); what it decodes on
// the way, each probe's day of results, is not, and without a limit the
// heap grew to twice that before a collection: the UI's peak resident
// set was 44 MB with a day of 4 probes on 2 nodes, 38 with the limit
// (issue 17: under 40; `sentry version` alone is 23). The limit is soft:
// above it the collector works harder, it never fails an allocation.
const memoryLimit = 16 << 20

// Run runs the UI on the terminal in and out until the operator quits or
// ctx ends, following the agent's events. Unless GOMEMLIMIT is set, it
// sets the process's soft memory limit to memoryLimit (Run is the
// process's, `sentry tui`).
func Run(ctx context.Context, a Agent, in io.Reader, out io.Writer, opts ...Option) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(memoryLimit))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The alternate screen is the view's (Model.View); the colours are
	// brought down to what the terminal has by the program, from TERM,
	// COLORTERM and NO_COLOR.
	p := tea.NewProgram(New(a, opts...), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx))
	go Follow(ctx, a, p.Send, DefaultBackoff(), tickEvery)
	_, err := p.Run()
	if ctx.Err() != nil && err != nil {
		return nil // interrupted: the terminal is restored
	}
	return err
}
