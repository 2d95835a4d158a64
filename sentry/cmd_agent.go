package main

import (
	"fmt"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/sentryha/sentry/internal/agent/unitfile"
	"github.com/spf13/cobra"
)

func newAgentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the Sentry daemon (peer link, local API, state store)",
		Long: `Run the Sentry daemon, as sentry-agent.service does (Type=notify, with a
watchdog). It serves the peer API to the other node over mutual TLS on
agent.listen, accepting only certificates of its own cluster CA, and the local
API for the CLI on agent.socket (root only). SIGHUP re-reads the configuration;
SIGTERM drains within agent.shutdown_timeout.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := cmd.Flags().GetString("config")
			a, err := agent.New(path, currentVersion().String())
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	unit := &cobra.Command{
		Use:   "unit",
		Short: "Print the systemd unit sentry-agent.service",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), unitfile.Unit)
			return err
		},
	}
	cmd.AddCommand(unit)
	return exitCodes{fail: "the agent could not start, or stopped on an error", invalid: configInvalid}.set(cmd)
}
