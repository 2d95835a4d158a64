package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
	"github.com/spf13/cobra"
)

// reportOptions are the flags of `sentry report`.
type reportOptions struct {
	week, format, out      string
	mail, asJSON, fromPeer bool
}

func newReportCommand() *cobra.Command {
	var opts reportOptions
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The weekly compatibility report: show a week's, or keep and mail it (the weekly timer)",
		Long: `Build a week's report from this node's store: the readiness verdict now and
over the week, the recommended actions, each service's rounds and latency,
the configuration, packages, compatibility, modules, RAID, failovers and
backups, and the week before for comparison.

Without --mail it is printed (or written to --out) as text, Markdown, HTML
(charts inline) or JSON. With --mail it is what sentry-report.timer runs
each week: the report is kept in the store and mailed through the relay of
[alert.mail] as text and HTML with the charts as inline images. The primary
mails it; the secondary mails one only when the primary has not answered for
a day, and says so in the subject; otherwise it says it skipped.

With --from-peer it shows the report the peer kept for the week instead
(each node keeps the reports it made for a year: the primary every week,
the secondary those it mailed), fetched over the peer link and printed here
in any format; "sentry report list" lists both nodes' kept reports.

--week takes an ISO week (2026-W49), "last" (the last full week, the
default) or "current" (the week so far).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.asJSON && cmd.Flags().Changed("format") && opts.format != "json" {
				return usageError{fmt.Errorf("--json and --format %s: choose one", opts.format)}
			}
			if opts.mail && (opts.out != "" || cmd.Flags().Changed("format")) {
				return usageError{fmt.Errorf("--mail keeps and mails the report: --out and --format are for showing it")}
			}
			if opts.mail && opts.fromPeer {
				return usageError{fmt.Errorf("--from-peer shows the peer's kept report: --mail keeps and mails this node's")}
			}
			if w := opts.week; w != "last" && w != "current" {
				if _, err := store.WeekStartOf(w); err != nil {
					return usageError{fmt.Errorf("--week: %v (or last, or current)", err)}
				}
			}
			switch opts.format {
			case "text", "markdown", "html", "json":
			default:
				return usageError{fmt.Errorf("--format %q: want text, markdown, html or json", opts.format)}
			}
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			if opts.mail {
				res, err := c.Reports().Run(ctx, opts.week, true)
				if err != nil {
					return err
				}
				if opts.asJSON {
					if err := printJSON(w, res); err != nil {
						return err
					}
				} else {
					switch {
					case len(res.MailedTo) > 0:
						fmt.Fprintf(w, "report %s mailed to %s (%d bytes): %s\n", res.Week, strings.Join(res.MailedTo, ", "), res.Bytes, res.Subject)
					case res.Skipped != "":
						fmt.Fprintf(w, "report %s (%s) not mailed: %s\n", res.Week, res.Headline, res.Skipped)
					}
					if res.Saved {
						fmt.Fprintf(w, "report %s kept in the store (sentry report list)\n", res.Week)
					}
					printRestoreRuns(w, res.Restore)
				}
				if res.Role == "primary" && len(res.MailedTo) == 0 {
					return fmt.Errorf("report %s was not mailed: %s", res.Week, res.Skipped)
				}
				return nil
			}
			format := opts.format
			if opts.asJSON {
				format = "json"
			}
			build := c.Reports().Build
			if opts.fromPeer {
				build = c.Reports().FromPeer
			}
			rep, err := build(ctx, opts.week, format)
			if err != nil {
				return err
			}
			body := rep.Body
			if !strings.HasSuffix(body, "\n") {
				body += "\n"
			}
			if opts.out != "" {
				if err := atomicfile.Write(opts.out, []byte(body), 0o644); err != nil {
					return err
				}
				kept := ""
				if rep.Node != "" {
					kept = ", kept by " + rep.Node + ","
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report %s (%s)%s written to %s\n", rep.Week, rep.Headline, kept, opts.out)
				return nil
			}
			_, err = io.WriteString(w, body)
			return err
		},
	}
	cmd.Flags().StringVar(&opts.week, "week", "last", "the week: 2026-W49, last (the last full week) or current")
	cmd.Flags().StringVar(&opts.format, "format", "text", "text, markdown, html or json")
	cmd.Flags().StringVar(&opts.out, "out", "", "write the report to this file (temp file, then rename) instead of printing it")
	cmd.Flags().BoolVar(&opts.mail, "mail", false, "keep the report and mail it (the weekly timer's run)")
	cmd.Flags().BoolVar(&opts.asJSON, "json", false, "print as JSON (the report; with --mail, what was kept and mailed)")
	cmd.Flags().BoolVar(&opts.fromPeer, "from-peer", false, "show the report the peer kept for the week (sentry report list), not one built from this node's store")
	cmd.AddCommand(newReportListCommand(), newRestoreTestCommand())
	return exitCodes{fail: "the report could not be made, or (--mail, on the primary) was not mailed, or (--from-peer) the peer keeps none of the week or did not answer", invalid: configInvalid, root: agentRead + "; with --mail, not root"}.set(cmd)
}

func newReportListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the weekly reports kept in this node's store and in the peer's, newest first",
		Long: `List the weekly reports kept in this node's store and in the peer's (asked
over the peer link), newest first, each with the node that keeps it: the
primary keeps one each week, the secondary those it mailed itself. Show one
with sentry report --week W (--from-peer for the peer's).

The peer not answering is a warning naming it: this node's are listed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.Reports().ListWithPeer(cmd.Context())
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			for _, s := range l.Skipped {
				fmt.Fprintf(stderr, "sentry: %s\n", s)
			}
			if l.PeerError != "" {
				fmt.Fprintf(stderr, "sentry: warning: %s (only this node's kept reports are listed)\n", l.PeerError)
			}
			if l.PeerMore > 0 {
				fmt.Fprintf(stderr, "sentry: %s keeps %d older reports, not listed\n", l.Peer, l.PeerMore)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), l)
			}
			if len(l.Reports) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no report kept yet: sentry-report.timer keeps one each week (sentry report --mail)")
				return nil
			}
			width := 0
			for _, r := range l.Reports {
				width = max(width, len(r.Node))
			}
			for _, r := range l.Reports {
				partial := ""
				if r.Partial {
					partial = " (partial week)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %-*s  %s  made %s%s\n", r.Week, width, r.Node, r.Headline, r.Made.UTC().Format("2006-01-02 15:04 UTC"), partial)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRead}.set(cmd)
}

func newRestoreTestCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore-test",
		Short: "Test this node's restic backups now: read a slice of the data back, restore a sample of files and compare them",
		Long: `For each restic repository a backup probe names (restic_repo), read one
52nd of the data back (restic check --read-data-subset, the week's slice:
all of it in a year), restore a sample of up to 20 files of the newest
snapshot into a private temporary folder, and compare each with the
snapshot (size, time, content). The weekly run (sentry report --mail) makes
the same test before the report.

It takes no lock, so a backup starting meanwhile is not refused; a
repository locked by a running backup or prune is skipped (not a failure)
and tried again an hour later. A failed test is a NOT READY reason (check
"backup") until the next good one. Each run is kept as a restore-test
event and shown in the weekly report.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			runs, err := c.Reports().RestoreTest(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), runs); err != nil {
					return err
				}
			} else if len(runs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no restic repository to test: no backup probe names a restic_repo (docs/operations.md)")
			}
			if !asJSON {
				printRestoreRuns(cmd.OutOrStdout(), runs)
			}
			for _, r := range runs {
				if r.Outcome() == "FAILED" {
					return exitError{exitFailure} // said above, or in the JSON
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return exitCodes{fail: "a restore test failed", invalid: configInvalid, root: agentRoot}.set(cmd)
}

// printRestoreRuns says what each restore test did.
func printRestoreRuns(w io.Writer, runs []report.RestoreRun) {
	for _, r := range runs {
		switch r.Outcome() {
		case "good":
			fmt.Fprintf(w, "restore test of %s: good: snapshot %s, data subset %s checked (%d packs), %d of %d files restored equal (%d bytes), %.1f s\n",
				r.Repo, r.Snapshot, r.Subset, r.CheckedPacks, r.FilesCompared, r.FilesRestored, r.CheckedBytes, r.DurationS)
		case "skipped":
			fmt.Fprintf(w, "restore test of %s: skipped: %s\n", r.Repo, r.Skipped)
		default:
			fmt.Fprintf(w, "restore test of %s: FAILED: %s\n", r.Repo, r.Why())
		}
	}
}
