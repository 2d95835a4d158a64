package main

import (
	"github.com/sentryha/sentry/internal/cli"
	"github.com/spf13/cobra"
)

func newManCommand(root *cobra.Command) *cobra.Command {
	return cli.NewManCommand(root, "Write man pages for sentry and every subcommand")
}

// writeManPages writes one section-1 page per command (sentry.1,
// sentry-config-check.1, ...).
func writeManPages(root *cobra.Command, dir string) (int, error) {
	return cli.WriteManPages(root, dir)
}
