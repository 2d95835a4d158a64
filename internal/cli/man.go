package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mcobra "github.com/muesli/mango-cobra"
	"github.com/muesli/roff"
	"github.com/spf13/cobra"
)

// NewManCommand is the hidden `NAME man` command that writes the man pages
// of root's tree; short is its one-line help.
func NewManCommand(root *cobra.Command, short string) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "man",
		Short:  short,
		Args:   NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := WriteManPages(root, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d man pages to %s\n", n, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "docs/man", "folder for the pages")
	return ExitCodes{Fail: "a page could not be written"}.Set(cmd)
}

// WriteManPages writes one section-1 page per available command of root's
// tree (NAME.1, NAME-config-check.1, ...), each with its exit codes.
func WriteManPages(root *cobra.Command, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	n := 0
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root {
			return nil
		}
		page, err := mcobra.NewManPage(1, c)
		if err != nil {
			return fmt.Errorf("man page for %q: %w", c.CommandPath(), err)
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-")
		page.Root.Name = name
		page = page.WithSection("Exit codes", c.Annotations[ExitCodesKey])
		name += ".1"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(page.Build(roff.NewDocument())), 0o644); err != nil {
			return err
		}
		n++
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return n, walk(root)
}
