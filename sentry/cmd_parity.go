package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/spf13/cobra"
)

func newParityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "parity",
		Short: "Package parity: the plan to bring S in step with P, and applying it",
	}
	var asJSON, yes bool
	var approve []string
	plan := &cobra.Command{
		Use:   "plan",
		Short: "What to install on S (P's exact versions), hold or unhold, and what each disk set needs to boot on the other machine",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			r, err := c.Parity(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r.Plan)
			}
			fmt.Fprint(cmd.OutOrStdout(), r.Plan.Text())
			printInventoryErrors(cmd.OutOrStdout(), r)
			return nil
		},
	}
	plan.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Carry out this node's part of the plan (a dry run without --yes)",
		Long: `Carry out this node's part of the parity plan: on the secondary, install P's
exact versions and match P's holds; on either node, the fixes its own disk set
needs to boot on the other machine. The .deb files come from this node's apt
cache or local repositories, or from the peer's over the peer link; each is
installed only when its SHA-256 is in a signed apt index of this node (an
InRelease that gpgv verifies with the apt keyrings), or when the operator
approves that hash with --approve. Every action is logged to the journal and
recorded as an event. Without --yes it prints the plan and changes nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runParityApply(cmd.Context(), c, cmd.OutOrStdout(), agent.ApplyRequest{Yes: yes, Approve: approve}, asJSON)
		},
	}
	apply.Flags().BoolVar(&yes, "yes", false, "apply (without it: a dry run)")
	apply.Flags().StringArrayVar(&approve, "approve", nil, "SHA-256 of a .deb to install though no signed index lists it (repeatable)")
	apply.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(plan, apply)
	return cmd
}

func runParityApply(ctx context.Context, c *agent.Client, w io.Writer, req agent.ApplyRequest, asJSON bool) error {
	for _, h := range req.Approve {
		if len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
			return usageError{fmt.Errorf("--approve %q: not a SHA-256 (64 hex digits)", h)}
		}
	}
	res, err := c.ParityApply(ctx, req)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(w, res); err != nil {
			return err
		}
	} else {
		printApply(w, res)
	}
	if res.Error != "" {
		if asJSON {
			return exitError{exitFailure}
		}
		return fmt.Errorf("%s", res.Error)
	}
	return nil
}

func printApply(w io.Writer, res *agent.ApplyResult) {
	if res.DryRun {
		fmt.Fprintf(w, "dry run on %s (disk set %s): nothing is changed; run with --yes to apply\n\n", res.Node, res.DiskSet)
		fmt.Fprint(w, res.Plan.Text())
		fmt.Fprintln(w)
	}
	if len(res.Actions) == 0 {
		fmt.Fprintf(w, "nothing for %s (disk set %s) to do\n", res.Node, res.DiskSet)
		return
	}
	verb := "done"
	if res.DryRun {
		verb = "would"
	}
	for _, a := range res.Actions {
		switch {
		case a.Error != "":
			fmt.Fprintf(w, "FAILED %s %s: %s\n", a.Action, a.Target, a.Error)
		case res.DryRun:
			fmt.Fprintf(w, "%s %s %s\n", verb, a.Action, a.Target)
		default:
			fmt.Fprintf(w, "%s %s %s", verb, a.Action, a.Target)
			if a.Trusted != "" {
				fmt.Fprintf(w, " (sha256 %s, %s; from %s)", short(a.SHA256), a.Trusted, a.Source)
			}
			fmt.Fprintln(w)
		}
	}
}
