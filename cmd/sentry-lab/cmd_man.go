package main

import (
	"github.com/sentryha/sentry/internal/cli"
	"github.com/spf13/cobra"
)

func newManCommand(root *cobra.Command) *cobra.Command {
	return cli.NewManCommand(root, "Write man pages for sentry-lab and every subcommand")
}

// writeManPages writes one section-1 page per command (sentry-lab.1,
// sentry-lab-up.1, ...), as sentry's man command does for sentry's.
func writeManPages(root *cobra.Command, dir string) (int, error) {
	return cli.WriteManPages(root, dir)
}
