package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/cli"
	"github.com/sentryha/sentry/tui"
	"github.com/spf13/cobra"
)

// tuiExitCodes are what the exit codes of `sentry tui` mean.
const tuiExitCodes = `  0  the operator quit
  1  the terminal UI failed (the message says why)
  2  bad flags or arguments; standard input or output is not a terminal
  3  ` + configInvalid + `
  4  ` + agentRead

func newTUICommand() *cobra.Command {
	var start string
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Open the terminal UI: the verdict, both nodes, services, sync, packages, failover, modules, events, reports",
		Long: `Open the operator's terminal UI on this node. It talks to the local agent
only, and updates as the agent records events. Started while the agent is
down, or when the agent goes away or the peer is unreachable, it says so,
keeps what it has, and reconnects by itself.

Screens: ` + strings.Join(tui.Screens(), ", ") + ` (tab and the number keys
move between them; ? lists every key; q quits). The Linux console
(TERM=linux) gets ASCII only; NO_COLOR turns colour off. Changes (a
configuration rollback, a failover plan, a module's version used or rolled
back) ask first, in the UI; they need root (a member of group sentry gets
the read-only view, through the agent's read-only socket).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTUI(cmd, start)
		},
	}
	cmd.Flags().StringVar(&start, "screen", "overview", "the screen to open: "+strings.Join(tui.Screens(), ", "))
	return cli.SetExitCodes(cmd, tuiExitCodes)
}

func runTUI(cmd *cobra.Command, start string) error {
	known := tui.Screens()
	start = strings.ToLower(start)
	ok := false
	for _, s := range known {
		ok = ok || s == start
	}
	if !ok {
		return usageError{fmt.Errorf("--screen %q: no such screen (%s)", start, strings.Join(known, ", "))}
	}
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	in, out := cmd.InOrStdin(), cmd.OutOrStdout()
	if !isTerminal(in) || !isTerminalWriter(out) {
		return usageError{errors.New("tui needs a terminal on standard input and output (for scripts: sentry status --json, sentry ready --json)")}
	}
	// The agent refusing this user does not clear by itself; the agent
	// down does, and the UI says so and waits for it.
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	_, err = c.Status(ctx)
	cancel()
	if errors.Is(err, agentclient.ErrNeedRoot) {
		return err
	}
	opts := append(tui.EnvOptions(os.Getenv), tui.WithScreen(start))
	return tui.Run(cmd.Context(), c, in, out, opts...)
}

// isTerminalWriter says whether w is a terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
