package main

import (
	"context"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"

	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/synchronizer/inventory"
	"github.com/spf13/cobra"
)

func newDriftCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Package drift between P and S: packages on one node only, other versions, kernels",
		Long: `Compare the primary's package inventory with the secondary's: packages
installed on one node only, at another version or architecture, held on one
only, the kernels each runs and boots, and apt sources. The state is in-step,
drifted, or unknown when an inventory is missing or too old (its age is
shown). Each agent retakes its inventory after every dpkg run; this command
fetches the peer's afresh. Configuration-file drift is 'sentry config drift'.
It exits 0 only when the state is in-step, like diff.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runDrift(cmd.Context(), c, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "not in step: drifted, or unknown (an inventory is missing or too old); or the command failed",
		invalid: configInvalid, root: agentRead}.set(cmd)
}

func runDrift(ctx context.Context, c *agentclient.Client, w io.Writer, asJSON bool) error {
	r, err := c.Parity(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(w, r.Drift); err != nil {
			return err
		}
	} else {
		fmt.Fprint(w, r.Drift.Text())
		printInventoryErrors(w, r)
	}
	if r.Drift.State != inventory.StateInStep {
		return exitError{exitFailure}
	}
	return nil
}

// printInventoryErrors says why an inventory is older than it should be.
func printInventoryErrors(w io.Writer, r *parity.Report) {
	if r.Self.Error != "" {
		fmt.Fprintf(w, "this node (%s): newest inventory failed: %s\n", r.Node, r.Self.Error)
	}
	if r.Peer.Error != "" {
		fmt.Fprintf(w, "peer: %s\n", r.Peer.Error)
	}
}
