package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sentryha/sentry/internal/agent"
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

// openConfigRepo opens this node's configuration repository read-only.
func openConfigRepo(cmd *cobra.Command) (*git.Repository, plumbing.ReferenceName, error) {
	cfg, err := cliConfig(cmd)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(cfg.Node.StateDir, "config.git")
	r, err := git.PlainOpen(dir)
	if err != nil {
		return nil, "", fmt.Errorf("configuration repository %s: %w", dir, err)
	}
	// The primary commits to main; the secondary mirrors it.
	if _, err := r.Storer.Reference(synchronizer.Branch); err == nil {
		return r, synchronizer.Branch, nil
	}
	return r, synchronizer.RefPrimary, nil
}

func resolve(r *git.Repository, head plumbing.ReferenceName, rev string) (*object.Commit, error) {
	if rev == "" || rev == "HEAD" {
		ref, err := r.Storer.Reference(head)
		if err != nil {
			return nil, fmt.Errorf("no commit yet")
		}
		return r.CommitObject(ref.Hash())
	}
	h, err := r.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	return r.CommitObject(*h)
}

type logEntry struct {
	Commit  string    `json:"commit"`
	Time    time.Time `json:"time"`
	Author  string    `json:"author"`
	Subject string    `json:"subject"`
	Message string    `json:"message"`
}

func newConfigLogCommand() *cobra.Command {
	var n int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Show the history of the configuration repository, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigLog(cmd, n, asJSON)
		},
	}
	cmd.Flags().IntVarP(&n, "number", "n", 20, "how many commits")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid}.set(cmd)
}

func runConfigLog(cmd *cobra.Command, n int, asJSON bool) error {
	r, head, err := openConfigRepo(cmd)
	if err != nil {
		return err
	}
	c, err := resolve(r, head, "")
	if err != nil {
		return err
	}
	out := []logEntry{}
	iter := object.NewCommitPreorderIter(c, nil, nil)
	err = iter.ForEach(func(c *object.Commit) error {
		if len(out) >= n {
			return io.EOF
		}
		subj, _, _ := strings.Cut(c.Message, "\n")
		out = append(out, logEntry{Commit: c.Hash.String(), Time: c.Committer.When, Author: c.Author.Name, Subject: subj, Message: c.Message})
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), out)
	}
	for _, e := range out {
		fmt.Fprintf(cmd.OutOrStdout(), "%s  %s  %s\n", short(e.Commit), e.Time.Local().Format("2006-01-02 15:04:05"), e.Subject)
	}
	return nil
}

// showJSON is what config show --json prints.
type showJSON struct {
	Commit  string `json:"commit"`
	Path    string `json:"path"`
	Content string `json:"content"`
}

func newConfigShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show REV:PATH",
		Short: "Print a tracked file as it was in a commit (PATH is absolute, e.g. HEAD:/etc/nginx/nginx.conf)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigShow(cmd, args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (commit, path, content)")
	return exitCodes{invalid: configInvalid}.set(cmd)
}

func runConfigShow(cmd *cobra.Command, arg string, asJSON bool) error {
	rev, p, ok := strings.Cut(arg, ":")
	if !ok || !strings.HasPrefix(p, "/") {
		return usageError{fmt.Errorf("want REV:/absolute/path, got %q", arg)}
	}
	r, head, err := openConfigRepo(cmd)
	if err != nil {
		return err
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return err
	}
	f, err := c.File("files" + p)
	if err != nil {
		return fmt.Errorf("%s is not a tracked file in %s", p, short(c.Hash.String()))
	}
	s, err := f.Contents()
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), showJSON{Commit: c.Hash.String(), Path: p, Content: s})
	}
	_, err = io.WriteString(cmd.OutOrStdout(), s)
	return err
}

// diffJSON is what config diff --json prints (without --nodes).
type diffJSON struct {
	Commit  string     `json:"commit"`
	Message string     `json:"message"`
	Files   []diffFile `json:"files"`
	Patch   string     `json:"patch"` // the unified diff
}

// diffFile is one file a commit changed, by its path in the repository
// ("" for a file added or removed).
type diffFile struct {
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
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
			return runConfigDiff(cmd, rev, byNode, asJSON)
		},
	}
	cmd.Flags().BoolVar(&byNode, "nodes", false, "show what differs between the nodes by design (their overlay files)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid}.set(cmd)
}

func runConfigDiff(cmd *cobra.Command, rev string, byNode, asJSON bool) error {
	r, head, err := openConfigRepo(cmd)
	if err != nil {
		return err
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if byNode {
		s, err := synchronizer.ReadSnapshot(r.Storer, c.Hash)
		if err != nil {
			return err
		}
		ds, err := synchronizer.NodeDiffs(r.Storer, s)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(w, ds)
		}
		if len(ds) == 0 {
			fmt.Fprintf(w, "no per-node files in %s: the nodes get the same configuration (overlays go in %s/NODE/PATH on the primary)\n",
				short(c.Hash.String()), synchronizer.OverlayDir)
		}
		for _, d := range ds {
			fmt.Fprintf(w, "%s on %s (- common, + %s):\n%s\n", d.Path, d.Node, d.Node, d.Diff)
		}
		return nil
	}
	var parent *object.Commit
	if c.NumParents() > 0 {
		if parent, err = c.Parent(0); err != nil {
			return err
		}
	}
	var patch *object.Patch
	if parent == nil {
		t, _ := c.Tree()
		changes, err := object.DiffTree(&object.Tree{}, t)
		if err != nil {
			return err
		}
		if patch, err = changes.Patch(); err != nil {
			return err
		}
	} else if patch, err = parent.Patch(c); err != nil {
		return err
	}
	if asJSON {
		var text strings.Builder
		if err := patch.Encode(&text); err != nil {
			return err
		}
		out := diffJSON{Commit: c.Hash.String(), Message: c.Message, Files: []diffFile{}, Patch: text.String()}
		for _, fp := range patch.FilePatches() {
			from, to := fp.Files()
			var f diffFile
			if from != nil {
				f.From = from.Path()
			}
			if to != nil {
				f.To = to.Path()
			}
			out.Files = append(out.Files, f)
		}
		return printJSON(w, out)
	}
	fmt.Fprintf(w, "commit %s\n%s\n", c.Hash, c.Message)
	return patch.Encode(w)
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
	if err := confirm(cmd, yes, fmt.Sprintf("Restore the configuration of %s on this primary, as a new commit the secondary applies?", describeRev(cmd, rev)),
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
func describeRev(cmd *cobra.Command, rev string) string {
	r, head, err := openConfigRepo(cmd)
	if err != nil {
		return rev
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return rev
	}
	subj, _, _ := strings.Cut(c.Message, "\n")
	return fmt.Sprintf("%s (%s, %s)", short(c.Hash.String()), c.Committer.When.Local().Format("2006-01-02 15:04"), subj)
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

func runConfigDrift(ctx context.Context, c *agent.Client, w io.Writer, asJSON bool) error {
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
