package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"strings"

	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/spf13/cobra"
)

func newParityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "parity",
		Short: "Package parity: the plan to bring S in step with P, and applying it",
	}
	var asJSON bool
	plan := &cobra.Command{
		Use:   "plan",
		Short: "What to install on S (P's exact versions), hold or unhold, and what each disk set needs to boot on the other machine",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runParityPlan(cmd.Context(), c, cmd.OutOrStdout(), asJSON)
		},
	}
	plan.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	exitCodes{invalid: configInvalid, root: agentRead}.set(plan)
	var opt parityApplyOptions
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Carry out this node's part of the plan (--dry-run: only say what it would do)",
		Long: `Carry out this node's part of the parity plan: on the secondary, install P's
exact versions and match P's holds; on either node, the fixes its own disk set
needs to boot on the other machine. The .deb files come from this node's apt
cache or local repositories, or from the peer's over the peer link; each is
installed only when its SHA-256 is in a signed apt index of this node (an
InRelease that gpgv verifies with the apt keyrings), or when the operator
approves that hash with --approve. Every action is logged to the journal and
recorded as an event.

With --dry-run it prints the plan and the actions it would take, and changes
nothing. Otherwise, on a terminal, it shows the actions and asks before
taking them; --yes does not ask (and is needed without a terminal).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runParityApply(cmd, opt)
		},
	}
	apply.Flags().BoolVar(&opt.dryRun, "dry-run", false, "only say what would be done; change nothing")
	apply.Flags().BoolVar(&opt.yes, "yes", false, "do not ask for confirmation")
	apply.Flags().StringArrayVar(&opt.approve, "approve", nil, "SHA-256 of a .deb to install though no signed index lists it (repeatable)")
	apply.Flags().BoolVar(&opt.allowDowngrade, "allow-downgrade", false, "install versions older than the installed ones (downgrades are refused without it)")
	apply.Flags().BoolVar(&opt.asJSON, "json", false, "print as JSON")
	exitCodes{fail: "an action failed, or the command failed", invalid: configInvalid, root: agentRoot, confirm: true}.set(apply)
	cmd.AddCommand(plan, apply)
	return cmd
}

func runParityPlan(ctx context.Context, c *agentclient.Client, w io.Writer, asJSON bool) error {
	r, err := c.Parity(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, r.Plan)
	}
	fmt.Fprint(w, r.Plan.Text())
	printInventoryErrors(w, r)
	return nil
}

// parityApplyOptions are the flags of parity apply.
type parityApplyOptions struct {
	approve             []string
	dryRun, yes, asJSON bool
	allowDowngrade      bool
}

// runParityApply asks the agent for a dry run (--dry-run), or on a
// terminal for a dry run, then the operator, then the apply; with --yes
// for the apply at once.
func runParityApply(cmd *cobra.Command, opt parityApplyOptions) error {
	for _, h := range opt.approve {
		if len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
			return usageError{fmt.Errorf("--approve %q: not a SHA-256 (64 hex digits)", h)}
		}
	}
	if !opt.dryRun {
		if err := canConfirm(cmd, opt.yes); err != nil {
			return err
		}
	}
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	if !opt.dryRun && !opt.yes {
		preview, err := c.ParityApply(ctx, parity.ApplyRequest{Approve: opt.approve, AllowDowngrade: opt.allowDowngrade})
		if err != nil {
			return err
		}
		switch {
		case preview.Error != "":
			return applyResult(w, preview, opt.asJSON)
		case len(preview.Actions) == 0:
			// Nothing to ask about.
			if opt.asJSON {
				return printJSON(w, preview)
			}
			fmt.Fprintf(w, "nothing for %s (disk set %s) to do\n", preview.Node, preview.DiskSet)
			return nil
		}
		printActions(cmd.ErrOrStderr(), preview)
		if err := confirm(cmd, false, fmt.Sprintf("Take these %d action(s) on %s (disk set %s)?", len(preview.Actions), preview.Node, preview.DiskSet),
			"nothing applied"); err != nil {
			return err
		}
	}
	res, err := c.ParityApply(ctx, parity.ApplyRequest{Yes: !opt.dryRun, Approve: opt.approve, AllowDowngrade: opt.allowDowngrade})
	if err != nil {
		return err
	}
	return applyResult(w, res, opt.asJSON)
}

// applyResult prints an apply's result; a failed one exits 1.
func applyResult(w io.Writer, res *parity.ApplyResult, asJSON bool) error {
	if asJSON {
		if err := printJSON(w, res); err != nil {
			return err
		}
		if res.Error != "" {
			return exitError{exitFailure}
		}
		return nil
	}
	printApply(w, res)
	if res.Error == "" {
		return nil
	}
	return errors.New(res.Error)
}

// printActions lists what an apply would do, before the question.
func printActions(w io.Writer, res *parity.ApplyResult) {
	fmt.Fprintf(w, "On %s (disk set %s):\n", res.Node, res.DiskSet)
	for _, a := range res.Actions {
		if a.Error != "" {
			fmt.Fprintf(w, "  cannot %s %s: %s\n", a.Action, a.Target, a.Error)
			continue
		}
		fmt.Fprintf(w, "  %s %s\n", a.Action, a.Target)
	}
}

func printApply(w io.Writer, res *parity.ApplyResult) {
	if res.DryRun {
		fmt.Fprintf(w, "dry run on %s (disk set %s): nothing is changed; run without --dry-run to apply\n\n", res.Node, res.DiskSet)
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
		case a.Error != "" && res.Error != "" && strings.Contains(res.Error, a.Error):
			// The error says why, once (on stderr, as the command's).
			fmt.Fprintf(w, "FAILED %s %s\n", a.Action, a.Target)
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
