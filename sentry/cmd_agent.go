package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

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
API for the CLI on agent.socket (root only), with its read-only view (status,
ready, events, reports) for the members of group sentry on agent.read_socket.
SIGHUP re-reads the configuration; SIGTERM drains within
agent.shutdown_timeout.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := cmd.Flags().GetString("config")
			a, err := agent.New(path, currentVersion().String())
			if err != nil {
				return err
			}
			agentProcs()
			return a.Run(cmd.Context())
		},
	}
	unit := &cobra.Command{
		Use:   "unit [NAME]",
		Short: "Print a systemd unit of sentry: sentry-agent.service (the default), sentry-report.service or sentry-report.timer",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := unitfile.UnitName
			if len(args) == 1 {
				name = args[0]
			}
			text, ok := unitfile.Text(name)
			if !ok {
				return usageError{fmt.Errorf("no unit %q: sentry has %s", name, strings.Join(unitfile.Names(), ", "))}
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), text)
			return err
		},
	}
	cmd.AddCommand(unit)
	return exitCodes{fail: "the agent could not start, or stopped on an error", invalid: configInvalid}.set(cmd)
}

// agentProcs runs the agent's goroutines on one thread at a time
// (GOMAXPROCS=1) unless the environment sets GOMAXPROCS. The agent waits
// on the network, the disks and the services it probes nearly all the
// time (under 1 % of a core while it probes); with a P per core, each of
// its many short wake-ups (a probe's answer, a timer, a hello) woke idle
// threads that spun looking for work and parked again, and sysmon polled
// the busier runtime: a third of the agent's CPU in the lab, for no
// speed-up a round needs (it waits on the services, not on the CPU).
func agentProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
