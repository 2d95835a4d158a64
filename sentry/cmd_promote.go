package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPromoteCommand() *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Make this secondary disk set the primary (when the primary's disks are lost)",
		Long: `Raise this secondary disk set to primary, at a generation above any it has
seen. Use it only when the primary's disks are lost: should they come back, their
bootcheck sees the newer generation (or the primary's address answering) and
holds them in safe mode. The role changes at the next boot. It asks for
confirmation on a terminal; --yes does not ask.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPromote(cmd, yes, asJSON)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "not promoted (the answer was not yes, or the agent refused)", invalid: configInvalid, root: agentRoot, confirm: true}.set(cmd)
}

func runPromote(cmd *cobra.Command, yes, asJSON bool) error {
	if err := canConfirm(cmd, yes); err != nil {
		return err
	}
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	if err := confirm(cmd, yes, "Promote this secondary to primary? The old primary's disks will refuse to start as primary.", "not promoted"); err != nil {
		return err
	}
	res, err := c.Promote(cmd.Context())
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: disk set %s is now the primary, generation %d (was %d)\nnext: %s\n",
		res.Node, res.DiskSet, res.Generation, res.OldGeneration, res.Next)
	return nil
}
