package main

import (
	"context"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newSyncCommand() *cobra.Command {
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "On the secondary: fetch the primary's configuration and apply it now",
		Long: `On the secondary: fetch what the primary's configuration repository has and
this node lacks, apply it (staged, then renamed into place), and reload the
affected units. A failed apply or a unit that does not come back returns to
the last good commit. --force applies even a commit that failed before, and
overwrites local edits (drift) as any apply does. A commit that failed to
apply exits 1, with --json too (the result says which and why).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runSync(cmd.Context(), c, cmd.OutOrStdout(), force, asJSON)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "apply even a commit that failed before")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "a commit failed to apply (and was rolled back), or the command failed", invalid: configInvalid, root: agentRoot}.set(cmd)
}

func runSync(ctx context.Context, c *agentclient.Client, w io.Writer, force, asJSON bool) error {
	res, err := c.Sync(ctx, force)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(w, res); err != nil {
			return err
		}
		if res.Failed != "" {
			return exitError{exitFailure}
		}
		return nil
	}
	switch {
	case res.Failed != "":
		fmt.Fprintf(w, "commit %s failed to apply: %s\nrolled back to %s: %v\n", short(res.Failed), res.Error, short(res.Applied), res.RolledBack)
		return exitError{exitFailure}
	case !res.Changed:
		fmt.Fprintf(w, "up to date at %s\n", short(res.Applied))
	default:
		fmt.Fprintf(w, "applied %s: %d written, %d removed; reloaded %s\n", short(res.Applied),
			len(res.Result.Written), len(res.Result.Removed), strings.Join(res.Units, " "))
		for _, d := range res.Result.Drift {
			fmt.Fprintf(w, "drift overwritten: %s\n", d)
		}
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
