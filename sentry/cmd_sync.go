package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sentryha/sentry/synchronizer"
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
overwrites local edits (drift) as any apply does.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.Sync(cmd.Context(), force)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			switch {
			case res.Failed != "":
				fmt.Fprintf(w, "commit %s failed to apply: %s\nrolled back to %s: %v\n", short(res.Failed), res.Error, short(res.Applied), res.RolledBack)
				return exitError{1}
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
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "apply even a commit that failed before")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
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

func addConfigRepoCommands(cmd *cobra.Command) {
	var n int
	var asJSON bool
	logCmd := &cobra.Command{
		Use:   "log",
		Short: "Show the history of the configuration repository, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, head, err := openConfigRepo(cmd)
			if err != nil {
				return err
			}
			c, err := resolve(r, head, "")
			if err != nil {
				return err
			}
			var out []logEntry
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
		},
	}
	logCmd.Flags().IntVarP(&n, "number", "n", 20, "how many commits")
	logCmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")

	show := &cobra.Command{
		Use:   "show REV:PATH",
		Short: "Print a tracked file as it was in a commit (PATH is absolute, e.g. HEAD:/etc/nginx/nginx.conf)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, p, ok := strings.Cut(args[0], ":")
			if !ok || !strings.HasPrefix(p, "/") {
				return usageError{fmt.Errorf("want REV:/absolute/path, got %q", args[0])}
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
			_, err = io.WriteString(cmd.OutOrStdout(), s)
			return err
		},
	}

	var byNode, diffJSON bool
	diff := &cobra.Command{
		Use:   "diff [REV]",
		Short: "Show what a commit changed (default: the newest)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{errors.New("at most one revision")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, head, err := openConfigRepo(cmd)
			if err != nil {
				return err
			}
			rev := ""
			if len(args) == 1 {
				rev = args[0]
			}
			c, err := resolve(r, head, rev)
			if err != nil {
				return err
			}
			if byNode {
				s, err := synchronizer.ReadSnapshot(r.Storer, c.Hash)
				if err != nil {
					return err
				}
				ds, err := synchronizer.NodeDiffs(r.Storer, s)
				if err != nil {
					return err
				}
				if diffJSON {
					return printJSON(cmd.OutOrStdout(), ds)
				}
				if len(ds) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "no per-node files in %s: the nodes get the same configuration (overlays go in %s/NODE/PATH on the primary)\n",
						short(c.Hash.String()), synchronizer.OverlayDir)
				}
				for _, d := range ds {
					fmt.Fprintf(cmd.OutOrStdout(), "%s on %s (- common, + %s):\n%s\n", d.Path, d.Node, d.Node, d.Diff)
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
				empty := &object.Tree{}
				changes, err := object.DiffTree(empty, t)
				if err != nil {
					return err
				}
				patch, err = changes.Patch()
				if err != nil {
					return err
				}
			} else if patch, err = parent.Patch(c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "commit %s\n%s\n", c.Hash, c.Message)
			return patch.Encode(cmd.OutOrStdout())
		},
	}

	diff.Flags().BoolVar(&byNode, "nodes", false, "show what differs between the nodes by design (their overlay files)")
	diff.Flags().BoolVar(&diffJSON, "json", false, "with --nodes: print as JSON")

	rollback := &cobra.Command{
		Use:   "rollback REV",
		Short: "On the primary: restore the configuration of REV as a new commit; the secondary follows",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.Rollback(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if res.Commit == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "the configuration already is that of %s\n", short(res.Restored))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s as commit %s\n", short(res.Restored), short(res.Commit))
			return nil
		},
	}
	var driftJSON bool
	drift := &cobra.Command{
		Use:   "drift",
		Short: "On the secondary: show local edits under the tracked paths, with their diff",
		Long: `On the secondary: compare the tracked paths on disk with the commit applied
last. A local edit is drift: it is reported (here, in sentry events, and in
sentry status on both nodes) and overwritten only by the next apply or by
sentry sync --force. Lines starting with - are the primary's, + this node's.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			items, err := c.Drift(cmd.Context())
			if err != nil {
				return err
			}
			if driftJSON {
				return printJSON(cmd.OutOrStdout(), items)
			}
			if len(items) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no drift: the tracked paths are as the primary's configuration says")
				return nil
			}
			for _, it := range items {
				fmt.Fprintf(cmd.OutOrStdout(), "%s (%s)\n%s\n", it.Path, it.What, it.Diff)
			}
			return nil
		},
	}
	drift.Flags().BoolVar(&driftJSON, "json", false, "print as JSON")
	cmd.AddCommand(logCmd, show, diff, rollback, drift)
}
