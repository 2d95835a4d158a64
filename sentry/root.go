package main

import (
	"github.com/sentryha/sentry/internal/cli"
	"github.com/spf13/cobra"
)

// exitCodesHelp is the table every command follows; each command's help
// says what the codes mean for it (exitCodes).
const exitCodesHelp = `  0  success
  1  the command failed (drift, compat, config drift: not in step; verify: a probe failed)
  2  bad flags or arguments; a confirmation that cannot be asked (no terminal, no --yes)
  3  the configuration file is invalid (the message names file, line, column and key)
  4  the command must run as root
  5  ready: the verdict is UNKNOWN (evidence missing or too old)`

// Command groups of `sentry --help`.
const (
	groupCluster  = "cluster"
	groupConfig   = "config"
	groupVerify   = "verify"
	groupPackages = "packages"
	groupBoot     = "boot"
	groupModules  = "modules"
	groupOther    = "other"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sentry",
		Short: "Keep a cold-standby pair of servers ready for a disk-swap failover",
		Long: `Sentry keeps a primary and a secondary server in step (configuration,
packages, drivers), exercises every service on both, and decides at boot from
the disks and the hardware which role a node takes.

With --json, a command prints its result as JSON on standard output, and an
error as {"error": "...", "exit_code": N}. Commands that change a node
(config rollback, parity apply, promote, bootcheck adopt, modules use and
rollback) ask for confirmation on a terminal; --yes skips the question, and
without a terminal they need it.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: checkFlags,
	}
	root.SetFlagErrorFunc(cli.FlagError)
	root.PersistentFlags().String("config", "/etc/sentry/sentry.toml", "configuration file")
	root.AddGroup(
		&cobra.Group{ID: groupCluster, Title: "Cluster:"},
		&cobra.Group{ID: groupConfig, Title: "Configuration:"},
		&cobra.Group{ID: groupVerify, Title: "Verification:"},
		&cobra.Group{ID: groupPackages, Title: "Packages:"},
		&cobra.Group{ID: groupBoot, Title: "Boot and failover:"},
		&cobra.Group{ID: groupModules, Title: "Modules:"},
		&cobra.Group{ID: groupOther, Title: "Other:"},
	)
	for _, x := range []struct {
		group string
		cmd   *cobra.Command
	}{
		{groupCluster, newInitCommand()},
		{groupCluster, newJoinCommand()},
		{groupCluster, newTokenCommand()},
		{groupCluster, newStatusCommand()},
		{groupCluster, newEventsCommand()},
		{groupCluster, newReportCommand()},
		{groupCluster, newTUICommand()},
		{groupCluster, newAgentCommand()},
		{groupConfig, newConfigCommand()},
		{groupConfig, newSyncCommand()},
		{groupVerify, newVerifyCommand()},
		{groupVerify, newVerifierCommand()},
		{groupPackages, newDriftCommand()},
		{groupPackages, newCompatCommand()},
		{groupPackages, newParityCommand()},
		{groupBoot, newBootcheckCommand()},
		{groupBoot, newReadyCommand()},
		{groupBoot, newFailoverCommand()},
		{groupBoot, newPromoteCommand()},
		{groupModules, newModulesCommand()},
		{groupOther, newVersionCommand()},
		{groupOther, newBenchCommand()},
		{groupOther, newManCommand(root)},
	} {
		x.cmd.GroupID = x.group
		root.AddCommand(x.cmd)
	}
	root.SetHelpCommand(cli.NewHelpCommand(root, "help [COMMAND]..."))
	root.SetHelpCommandGroupID(groupOther)
	root.SetCompletionCommandGroupID(groupOther)
	// Made now rather than when the command line is run, so that the
	// completion commands follow the rules below and have man pages.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	exitCodes{}.set(root)
	root.SetUsageTemplate(cli.UsageTemplate)
	cli.Strict(root, cli.StrictOptions{ExitCodes: exitCodesHelp})
	return root
}

// checkFlags checks the required flags and the flag groups (cobra reports
// them as plain errors; checked here first, they are usage errors). It is
// the root's PersistentPreRunE: a command with its own calls it too.
func checkFlags(cmd *cobra.Command, args []string) error { return cli.CheckFlags(cmd, args) }

// subPath is cmd's path without "sentry ", for messages that start with
// "sentry: ".
func subPath(cmd *cobra.Command) string { return cli.SubPath(cmd) }

// exitCodesKey is the annotation that holds a command's exit codes, shown
// in its help and man page.
const exitCodesKey = cli.ExitCodesKey

// groupKey marks a command as a group of subcommands.
const groupKey = cli.GroupKey

// exitCodes are what a command's exit codes mean, for its help: the zero
// value is the whole table (exitCodesHelp), anything else as
// cli.ExitCodes says it.
type exitCodes struct {
	fail    string // what 1 means, when more than that the command failed
	invalid string // what 3 means ("" when it reads no configuration file)
	root    string // what 4 means ("" when it need not run as root)
	confirm bool   // it asks for confirmation: 2 also when it cannot ask
	group   bool   // a group of subcommands
}

// configInvalid is what exit code 3 means for a command that reads --config.
const configInvalid = "the configuration file (--config) is invalid"

// agentRoot is what exit code 4 means for a command that asks the agent
// to act (or to show what only root may see).
const agentRoot = "not root: the agent's local API (agent.socket) is root's only"

// agentRead is what exit code 4 means for a command that only reads from
// the agent: a member of group sentry may run it, through the read-only
// socket (docs/security.md).
const agentRead = "neither root nor in group sentry (the agent's read-only socket, agent.read_socket)"

func (e exitCodes) String() string {
	if e == (exitCodes{}) {
		return exitCodesHelp
	}
	return cli.ExitCodes{Fail: e.fail, Invalid: e.invalid, Root: e.root, Confirm: e.confirm, Group: e.group}.String()
}

// set records e as c's exit codes and returns c.
func (e exitCodes) set(c *cobra.Command) *cobra.Command { return cli.SetExitCodes(c, e.String()) }

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs { return cli.ExactArgs(n) }

func noArgs(cmd *cobra.Command, args []string) error { return cli.NoArgs(cmd, args) }
