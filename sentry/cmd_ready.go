package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/cli"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/spf13/cobra"
)

func newReadyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ready",
		Short: "Would a disk swap work now? READY, NOT READY or UNKNOWN, with the reasons",
		Long: `Say whether the pair is ready for a failover: if the primary machine died now,
would its disks come up on the other machine with every service working?
The agent judges it continuously (after each hello and verifier round, and
at least every 30 seconds) on both nodes' facts: the peer's contact, the
stamps, the configuration sync, the probes, the modules, packages and
kernels, the inventories, each disk set on the other machine, boot loaders,
network coverage, RAID, SMART, backups and the clocks.

Blocking reasons come first, then warnings (which do not block), each with
the check's name, its evidence (node, value, how old) and the command that
explains or fixes it. Evidence older than its window makes a check unknown,
never green. With --json, the whole result, every check with what it means.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runReady(cmd.Context(), c, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	codes := exitCodes{fail: "NOT READY (a blocking check fails); or the command failed", invalid: configInvalid, root: agentRead}.String()
	return cli.SetExitCodes(cmd, codes+"\n  5  UNKNOWN: nothing fails, but a blocking check's evidence is missing or too old")
}

// readyJSON is `sentry ready --json`: the verdict with each check's
// meaning.
type readyJSON struct {
	*readiness.Result
	Checks map[string]string `json:"checks"` // check name: what it checks
}

func runReady(ctx context.Context, c *agentclient.Client, w io.Writer, asJSON bool) error {
	r, err := c.Ready(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		docs := map[string]string{}
		for _, ch := range readiness.Default().Checks() {
			docs[ch.Name] = ch.Doc
		}
		if err := printJSON(w, readyJSON{Result: r, Checks: docs}); err != nil {
			return err
		}
	} else {
		printReady(w, r)
	}
	switch r.Verdict {
	case readiness.Ready:
		return nil
	case readiness.NotReady:
		return exitError{exitFailure}
	}
	return exitError{exitUnknown}
}

// printReady prints the verdict, then the blocking findings, the warnings
// and a count of the rest.
func printReady(w io.Writer, r *readiness.Result) {
	at := ""
	if !r.At.IsZero() {
		at = fmt.Sprintf(" (judged %s ago)", readiness.Human(time.Since(r.At)))
	}
	fmt.Fprintf(w, "%s%s\n", r.Verdict, at)
	var block, warn []readiness.Finding
	rest := map[readiness.State]int{}
	for _, f := range r.Findings {
		switch {
		case f.Blocking():
			block = append(block, f)
		case f.State == readiness.Fail || f.State == readiness.Stale:
			warn = append(warn, f)
		default:
			rest[f.State]++
		}
	}
	section := func(title string, fs []readiness.Finding) {
		if len(fs) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, f := range fs {
			fmt.Fprintf(w, "  %-16s %-8s%s\n", f.Check, f.State, f.Reason)
			for _, e := range f.Evidence {
				fmt.Fprintf(w, "  %-16s         %s\n", "", evidence(e))
			}
			if f.Fix != "" {
				fmt.Fprintf(w, "  %-16s         fix: %s\n", "", f.Fix)
			}
		}
	}
	section("Blocking", block)
	section("Warnings", warn)
	fmt.Fprintf(w, "\n%d passed, %d not applicable (sentry ready --json shows every check)\n", rest[readiness.Pass], rest[readiness.NA])
	if p := r.Peer; p != nil {
		fmt.Fprintf(w, "\n%s's own verdict: %s (judged %s ago", p.Node, p.Verdict, readiness.Human(time.Since(p.At)))
		if !p.Heard.IsZero() {
			fmt.Fprintf(w, ", heard %s ago", readiness.Human(time.Since(p.Heard)))
		}
		fmt.Fprintln(w, ")")
		for _, x := range p.Reasons {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
}

func evidence(e readiness.Evidence) string {
	var b strings.Builder
	if e.Node != "" {
		b.WriteString(e.Node + ": ")
	}
	b.WriteString(e.What + " = " + e.Value)
	if !e.Measured.IsZero() {
		b.WriteString(" (" + readiness.Human(e.Age) + " old)")
	}
	return b.String()
}
