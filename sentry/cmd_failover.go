package main

import (
	"fmt"
	"time"

	"github.com/sentryha/sentry/internal/failover"
	"github.com/spf13/cobra"
)

func newFailoverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Plan a disk swap, and follow its record after the boot",
	}
	cmd.AddCommand(newFailoverPlanCommand(), newFailoverStatusCommand(), newFailoverHistoryCommand())
	return cmd
}

func newFailoverPlanCommand() *cobra.Command {
	var planned, force, markdown, asJSON bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print and record the checklist of a disk swap",
		Long: `Print and record the checklist of a disk swap: the readiness verdict (the
plan is refused when it is not READY, unless --force, which the plan and the
failover record keep), which physical disks go where (serial, model, size,
bay or by-path name, md membership; the bays' locate LEDs are lit where
ledctl can), the order of the steps, what the console shows at boot, what
to check afterwards, and how to leave safe mode or when to promote instead.

--planned is planned maintenance: both machines are healthy and are swapped
to repair or upgrade one, then swapped back. It measures the final-sync
barrier right before the shutdown (the secondary has applied the primary's
head, and both inventories are fresh) and refuses when it does not hold.
After the boot, the agent on the primary's disks completes the failover
record: sentry failover status.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if markdown && asJSON {
				return usageError{fmt.Errorf("failover plan: --markdown and --json exclude each other")}
			}
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.FailoverPlan(cmd.Context(), planned, force)
			if err != nil {
				return err
			}
			switch {
			case asJSON:
				return printJSON(cmd.OutOrStdout(), p)
			case markdown:
				fmt.Fprint(cmd.OutOrStdout(), p.Markdown())
			default:
				fmt.Fprint(cmd.OutOrStdout(), p.Text())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&planned, "planned", false, "planned maintenance: both machines healthy; check the final-sync barrier")
	cmd.Flags().BoolVar(&force, "force", false, "make the plan even when the verdict is not READY (recorded)")
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print as Markdown")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "refused: the verdict is not READY or the barrier does not hold (and no --force); or the command failed", invalid: configInvalid, root: agentRoot}.set(cmd)
}

func newFailoverStatusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "This boot's failover record (or the newest): each phase timed, what it still waits for",
		Long: `Show the failover record of this boot, or the newest one stored: the plan
(if any), the last contact with the peer before the shutdown, the boot, the
boot check's decision and its stages, the service addresses up and
announced, each service green, the peer back and the verdict after, with
the downtime split into these phases, and what the record still waits for.
Exit 1 while the record is not complete.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			st, err := c.FailoverStatus(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), st); err != nil {
					return err
				}
			} else if st.Record == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "no failover recorded: no boot has moved the primary's disk set to another machine")
			} else {
				w := cmd.OutOrStdout()
				if !st.ThisBoot {
					fmt.Fprintf(w, "(not this boot: the newest record, updated %s ago)\n", time.Since(st.Record.Updated).Round(time.Second))
				}
				fmt.Fprint(w, st.Record.Text())
				for _, m := range st.Missing {
					fmt.Fprintf(w, "waiting for: %s\n", m)
				}
				if st.Check != "" {
					fmt.Fprintf(w, "inconsistent: %s\n", st.Check)
				}
			}
			if st.Record != nil && !st.Record.Complete {
				return exitError{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "the record is not complete yet", invalid: configInvalid, root: agentRead}.set(cmd)
}

func newFailoverHistoryCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Every failover, failback and planned swap recorded on this disk set",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			h, err := c.FailoverHistory(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if h == nil {
					h = []failover.Record{}
				}
				return printJSON(cmd.OutOrStdout(), h)
			}
			if len(h) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no failover recorded")
				return nil
			}
			fmt.Fprint(cmd.OutOrStdout(), failover.HistoryText(h))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRead}.set(cmd)
}
