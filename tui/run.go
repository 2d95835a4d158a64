package tui

import (
	"context"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"
)

// tickEvery is how often the UI redraws the ages it shows and refetches
// the newest results on the Services screen.
const tickEvery = 15 * time.Second

// Run runs the UI on the terminal in and out until the operator quits or
// ctx ends, following the agent's events.
func Run(ctx context.Context, a Agent, in io.Reader, out io.Writer, opts ...Option) error {
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
