package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"strings"

	"github.com/sentryha/sentry/internal/store"
	"github.com/spf13/cobra"
)

// eventsOptions are the flags of `sentry events`.
type eventsOptions struct {
	n      int
	asJSON bool
	kinds  []string
	follow bool
}

func newEventsCommand() *cobra.Command {
	var opts eventsOptions
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the newest events the local agent recorded (joins, refusals, peer contact)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runEvents(cmd.Context(), c, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVarP(&opts.n, "number", "n", 50, "how many events")
	cmd.Flags().BoolVar(&opts.asJSON, "json", false, "print as JSON")
	cmd.Flags().StringSliceVar(&opts.kinds, "kind", nil, "only events of these kinds (such as failover,bootcheck,probe-red)")
	cmd.Flags().BoolVarP(&opts.follow, "follow", "f", false, "then print new events as they come, until interrupted (with --json: one event a line)")
	return exitCodes{invalid: configInvalid, root: agentRead}.set(cmd)
}

// runEvents prints the newest events and, with opts.follow, the new ones
// as they come until ctx ends.
func runEvents(ctx context.Context, c *agentclient.Client, opts eventsOptions, out, errOut io.Writer) error {
	// With --kind, the newest n of those kinds: ask for more and keep the
	// matching ones (the store keeps a bounded history).
	ask := opts.n
	if len(opts.kinds) > 0 {
		ask = max(opts.n, 5000)
	}
	all, err := c.Events(ctx, ask)
	if err != nil {
		return err
	}
	evs := all
	if len(opts.kinds) > 0 {
		evs = filterEvents(all, opts.kinds, opts.n)
		if len(evs) == 0 {
			// Not an error (a quiet node has none), but a typo in a
			// kind looks the same: say what was searched.
			fmt.Fprintf(errOut, "sentry: no event of kind %s among the newest %d\n", strings.Join(opts.kinds, ", "), ask)
		}
	}
	if !opts.follow {
		if opts.asJSON {
			return printJSON(out, evs)
		}
		for _, e := range evs {
			printEvent(out, e)
		}
		return nil
	}
	print := func(e store.Event) error {
		if opts.asJSON {
			return json.NewEncoder(out).Encode(e)
		}
		printEvent(out, e)
		return nil
	}
	for _, e := range evs {
		if err := print(e); err != nil {
			return err
		}
	}
	// Follow from the newest event read (of any kind): the stream first
	// gives what came since.
	var since uint64
	if len(all) > 0 {
		since = all[len(all)-1].Seq
	}
	want := kindSet(opts.kinds)
	for e, err := range c.Subscribe(ctx, since) {
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil // interrupted: the usual end of --follow
			}
			return err
		}
		if len(want) > 0 && !want[e.Kind] {
			continue
		}
		if err := print(e); err != nil {
			return err
		}
	}
	return nil
}

func printEvent(w io.Writer, e store.Event) {
	fmt.Fprintf(w, "%s  %-16s %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Message)
}

func kindSet(kinds []string) map[string]bool {
	want := map[string]bool{}
	for _, k := range kinds {
		want[strings.TrimSpace(k)] = true
	}
	return want
}

// filterEvents keeps the newest n events (evs is oldest first) of kinds.
func filterEvents(evs []store.Event, kinds []string, n int) []store.Event {
	want := kindSet(kinds)
	var out []store.Event
	for _, e := range evs {
		if want[e.Kind] {
			out = append(out, e)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
