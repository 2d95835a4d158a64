package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newModulesApproveCommand() *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "approve",
		Short: "On the secondary: let the primary's modules write where they ask (beyond the built-in paths)",
		Long: `The secondary decides what the primary's configuration may reach: the
tracked paths and executables of the built-in modules, and what was approved
here. A module version from the primary that asks for more (another tracked
folder, an executable) is held back, shown in 'sentry status' and recorded as
a boundary-pending event, until the operator approves it on the secondary
with this command. The approval is kept in this disk set's state folder
(boundary.toml) and never synced. It asks for confirmation on a terminal;
--yes does not ask.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModulesApprove(cmd, yes, asJSON)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "not approved (not a secondary, the modules cannot be read, or the answer was not yes)",
		invalid: configInvalid, root: agentRoot, confirm: true}.set(cmd)
}

func runModulesApprove(cmd *cobra.Command, yes, asJSON bool) error {
	if err := canConfirm(cmd, yes); err != nil {
		return err
	}
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	if !yes {
		st, err := c.Status(cmd.Context())
		if err != nil {
			return err
		}
		var pending []string
		for _, n := range st.Nodes {
			if n.Self {
				pending = n.BoundaryPending
			}
		}
		if len(pending) == 0 {
			fmt.Fprintln(cmd.OutOrStdout(), "nothing waits for approval")
			return nil
		}
		if err := confirm(cmd, yes, "The primary's modules ask to write or run here:\n  "+strings.Join(pending, "\n  ")+"\nApprove?", "not approved"); err != nil {
			return err
		}
	}
	res, err := c.ApproveModules(cmd.Context())
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), res)
	}
	if res.Approved.Empty() {
		fmt.Fprintln(cmd.OutOrStdout(), "nothing waits for approval")
		return nil
	}
	for _, r := range res.Approved.Roots {
		fmt.Fprintf(cmd.OutOrStdout(), "approved: the primary's configuration may be written under %s\n", r)
	}
	for _, e := range res.Approved.Executables {
		fmt.Fprintf(cmd.OutOrStdout(), "approved: executable %s may cross\n", e)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "kept in %s; the sync restarts with it\n", res.File)
	return nil
}
