package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/spf13/cobra"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file; show, diff and roll back the tracked configuration",
	}
	cmd.AddCommand(newConfigCheckCommand(), newConfigLogCommand(), newConfigShowCommand(), newConfigDiffCommand(),
		newConfigRollbackCommand(), newConfigDriftCommand())
	return cmd
}

func newConfigCheckCommand() *cobra.Command {
	var asJSON bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration file and print the effective configuration",
		Long: `Validate the configuration file: strict decoding (an unknown key is an
error), then value checks. A bad file is reported with its file name, line,
column and key, and the command exits 3.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := cmd.Flags().GetString("config")
			return runConfigCheck(cmd.OutOrStdout(), path, asJSON)
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print the effective configuration as JSON")
	return exitCodes{fail: "the configuration file cannot be read", invalid: configInvalid}.set(check)
}

// runConfigCheck prints the effective configuration of the file at path;
// a bad file is a *config.Error (its context, the lines around a syntax
// error, is printed with the message).
func runConfigCheck(stdout io.Writer, path string, asJSON bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	}
	fmt.Fprintf(stdout, "%s: ok\n\n# effective configuration (defaults filled in)\n", path)
	return toml.NewEncoder(stdout).Encode(cfg)
}

func newConfigLogCommand() *cobra.Command {
	var n int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Show the history of the configuration repository, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runConfigLog(cmd.Context(), c, cmd.OutOrStdout(), n, asJSON)
		},
	}
	cmd.Flags().IntVarP(&n, "number", "n", 20, "how many commits")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRead}.set(cmd)
}

// runConfigLog prints the history the agent reads from this node's
// configuration repository.
func runConfigLog(ctx context.Context, c *agentclient.Client, w io.Writer, n int, asJSON bool) error {
	out, err := c.ConfigLog(ctx, "", n)
	if err != nil {
		return err
	}
	if out == nil {
		out = []cfgsync.LogEntry{}
	}
	if asJSON {
		return printJSON(w, out)
	}
	for _, e := range out {
		fmt.Fprintf(w, "%s  %s  %s\n", short(e.Commit), e.Time.Local().Format("2006-01-02 15:04:05"), e.Subject)
	}
	return nil
}

func newConfigShowCommand() *cobra.Command {
	var asJSON bool
	var node string
	cmd := &cobra.Command{
		Use:   "show REV:PATH",
		Short: "Print a tracked file as it was in a commit (PATH is absolute, e.g. HEAD:/etc/nginx/nginx.conf)",
		Long: `Print a tracked file as it was in a commit (PATH is absolute, e.g.
HEAD:/etc/nginx/nginx.conf). A node's own version of a file is an overlay
file on the primary (OVERLAY_DIR/NODE/PATH): --node NODE prints PATH as that
node gets it, and the overlay files that replace PATH are named on stderr.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, p, ok := strings.Cut(args[0], ":")
			if !ok || !strings.HasPrefix(p, "/") {
				return usageError{fmt.Errorf("want REV:/absolute/path, got %q", args[0])}
			}
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runConfigShow(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), rev, p, node, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (commit, path, content, and the overlay files)")
	cmd.Flags().StringVar(&node, "node", "", "print PATH as NODE gets it (its overlay file, if it has one)")
	return exitCodes{invalid: configInvalid, root: agentRoot}.set(cmd)
}

// runConfigShow prints a tracked file; what the overlay files say about it
// goes to stderr, so that stdout is the file's content alone.
func runConfigShow(ctx context.Context, c *agentclient.Client, stdout, stderr io.Writer, rev, p, node string, asJSON bool) error {
	res, err := c.ConfigShow(ctx, rev, p, node)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, res)
	}
	if res.Overlay != "" {
		fmt.Fprintf(stderr, "overlay file: %s replaces %s on %s\n", res.Overlay, res.AppliesTo, res.Node)
	}
	for _, o := range res.Overlays {
		fmt.Fprintf(stderr, "note: %s gets its own version of %s (%s; --node %s shows it)\n", o.Node, res.Path, o.File, o.Node)
	}
	_, err = io.WriteString(stdout, res.Content)
	return err
}

func newConfigDiffCommand() *cobra.Command {
	var byNode, asJSON bool
	cmd := &cobra.Command{
		Use:   "diff [REV]",
		Short: "Show what a commit changed (default: the newest)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev := ""
			if len(args) == 1 {
				rev = args[0]
			}
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runConfigDiff(cmd.Context(), c, cmd.OutOrStdout(), rev, byNode, asJSON)
		},
	}
	cmd.Flags().BoolVar(&byNode, "nodes", false, "show what differs between the nodes by design (their overlay files)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRoot}.set(cmd)
}

func runConfigDiff(ctx context.Context, c *agentclient.Client, w io.Writer, rev string, byNode, asJSON bool) error {
	if byNode {
		res, err := c.ConfigNodeDiffs(ctx, rev)
		if err != nil {
			return err
		}
		ds := res.Nodes
		if ds == nil {
			ds = []synchronizer.NodeDiff{}
		}
		if asJSON {
			return printJSON(w, ds)
		}
		if len(ds) == 0 {
			fmt.Fprintf(w, "no per-node files in %s: the nodes get the same configuration (overlays go in %s/NODE/PATH on the primary)\n",
				short(res.Commit), synchronizer.OverlayDir)
		}
		for _, d := range ds {
			fmt.Fprintf(w, "%s on %s (- common, + %s):\n%s\n", d.Path, d.Node, d.Node, d.Diff)
		}
		return nil
	}
	res, err := c.ConfigDiff(ctx, rev)
	if err != nil {
		return err
	}
	if asJSON {
		if res.Files == nil {
			res.Files = []cfgsync.DiffFile{}
		}
		return printJSON(w, res)
	}
	fmt.Fprintf(w, "commit %s\n%s\n", res.Commit, res.Message)
	for _, f := range res.Files {
		if f.Node != "" {
			name := f.To
			if name == "" {
				name = f.From
			}
			fmt.Fprintf(w, "overlay file: %s replaces %s on %s\n", name, f.AppliesTo, f.Node)
		}
	}
	_, err = io.WriteString(w, res.Patch)
	return err
}

func newConfigRollbackCommand() *cobra.Command {
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "rollback REV",
		Short: "On the primary: restore the configuration of REV as a new commit; the secondary follows",
		Long: `On the primary: restore the tracked configuration of REV ('sentry config log'
lists the commits) on disk and commit it as a new commit; the secondary applies
it as any change. It asks for confirmation on a terminal; --yes does not ask.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigRollback(cmd, args[0], yes, asJSON)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRoot, confirm: true}.set(cmd)
}

func runConfigRollback(cmd *cobra.Command, rev string, yes, asJSON bool) error {
	if err := canConfirm(cmd, yes); err != nil {
		return err
	}
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	if err := confirm(cmd, yes, fmt.Sprintf("Restore the configuration of %s on this primary, as a new commit the secondary applies?", describeRev(cmd.Context(), c, rev)),
		"not rolled back"); err != nil {
		return err
	}
	res, err := c.Rollback(cmd.Context(), rev)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), res)
	}
	if res.Commit == "" {
		fmt.Fprintf(cmd.OutOrStdout(), "the configuration already is that of %s\n", short(res.Restored))
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "restored %s as commit %s\n", short(res.Restored), short(res.Commit))
	return nil
}

// describeRev names rev for a question: its commit and subject when this
// node's repository has it, else rev as given.
func describeRev(ctx context.Context, c *agentclient.Client, rev string) string {
	log, err := c.ConfigLog(ctx, rev, 1)
	if err != nil || len(log) == 0 {
		return rev
	}
	e := log[0]
	return fmt.Sprintf("%s (%s, %s)", short(e.Commit), e.Time.Local().Format("2006-01-02 15:04"), e.Subject)
}

func newConfigDriftCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "On the secondary: show local edits under the tracked paths, with their diff",
		Long: `On the secondary: compare the tracked paths on disk with the commit applied
last. A local edit is drift: it is reported (here, in sentry events, and in
sentry status on both nodes) and overwritten only by the next apply or by
sentry sync --force. Lines starting with - are the primary's, + this node's.
It exits 1 when there is drift, like diff.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runConfigDrift(cmd.Context(), c, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "drift: a tracked path was edited locally; or the command failed", invalid: configInvalid, root: agentRoot}.set(cmd)
}

func runConfigDrift(ctx context.Context, c *agentclient.Client, w io.Writer, asJSON bool) error {
	items, err := c.Drift(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if items == nil {
			items = []synchronizer.DriftItem{}
		}
		if err := printJSON(w, items); err != nil {
			return err
		}
	} else {
		if len(items) == 0 {
			fmt.Fprintln(w, "no drift: the tracked paths are as the primary's configuration says")
		}
		for _, it := range items {
			fmt.Fprintf(w, "%s (%s)\n%s\n", it.Path, it.What, it.Diff)
		}
	}
	if len(items) > 0 {
		return exitError{exitFailure}
	}
	return nil
}
