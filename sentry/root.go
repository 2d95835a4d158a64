package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

const exitCodesHelp = `Exit codes:
  0  success
  1  the command failed
  2  bad flags or arguments
  3  the configuration file is invalid (the message names file, line, column and key)
  4  the command must run as root`

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sentry",
		Short: "Keep a cold-standby pair of servers ready for a disk-swap failover",
		Long: `Sentry keeps a primary and a secondary server in step (configuration,
packages, drivers), exercises every service on both, and decides at boot from
the disks and the hardware which role a node takes.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.PersistentFlags().String("config", "/etc/sentry/sentry.toml", "configuration file")
	root.AddCommand(
		newVersionCommand(),
		newConfigCommand(),
		newAgentCommand(),
		newInitCommand(),
		newJoinCommand(),
		newTokenCommand(),
		newStatusCommand(),
		newEventsCommand(),
		newBenchCommand(),
		newSyncCommand(),
		newVerifyCommand(),
		newVerifierCommand(),
		newLabCommand(),
		newBootcheckCommand(),
		newPromoteCommand(),
		newModulesCommand(),
		newDriftCommand(),
		newCompatCommand(),
		newParityCommand(),
		newManCommand(root),
	)
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError{err}
	}
	return nil
}
