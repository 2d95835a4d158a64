package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// exitCodesHelp is the table every command follows; each command's help
// says what the codes mean for it (exitCodes).
const exitCodesHelp = `  0  success
  1  the command failed (drift, compat, config drift: not in step; verify: a probe failed)
  2  bad flags or arguments; a confirmation that cannot be asked (no terminal, no --yes)
  3  the configuration file is invalid (the message names file, line, column and key)
  4  the command must run as root`

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
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// A group given a command it does not have and a flag it does
		// not have ("sentry nosuch --json"): the command is the mistake.
		if args := c.Flags().Args(); c.Annotations[groupKey] != "" && len(args) > 0 {
			return groupArgs(c, args)
		}
		return usageError{err}
	})
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
		{groupCluster, newAgentCommand()},
		{groupConfig, newConfigCommand()},
		{groupConfig, newSyncCommand()},
		{groupVerify, newVerifyCommand()},
		{groupVerify, newVerifierCommand()},
		{groupPackages, newDriftCommand()},
		{groupPackages, newCompatCommand()},
		{groupPackages, newParityCommand()},
		{groupBoot, newBootcheckCommand()},
		{groupBoot, newPromoteCommand()},
		{groupModules, newModulesCommand()},
		{groupOther, newVersionCommand()},
		{groupOther, newBenchCommand()},
		{groupOther, newManCommand(root)},
	} {
		x.cmd.GroupID = x.group
		root.AddCommand(x.cmd)
	}
	root.SetHelpCommand(newHelpCommand(root))
	root.SetHelpCommandGroupID(groupOther)
	root.SetCompletionCommandGroupID(groupOther)
	// Made now rather than when the command line is run, so that the
	// completion commands follow the rules below and have man pages.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	exitCodes{}.set(root)
	root.SetUsageTemplate(usageTemplate)
	strictTree(root)
	return root
}

// usageTemplate is cobra's, with the groups' use line (a group runs only
// its subcommands) and each command's exit codes.
const usageTemplate = `Usage:{{if and .Runnable (not (index .Annotations "` + groupKey + `"))}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasHelpSubCommands}}

Additional help topics:{{range .Commands}}{{if .IsAdditionalHelpTopicCommand}}
  {{rpad .CommandPath .CommandPathPadding}} {{.Short}}{{end}}{{end}}{{end}}{{with index .Annotations "` + exitCodesKey + `"}}

Exit codes:
{{.}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// checkFlags checks the required flags and the flag groups (cobra reports
// them as plain errors; checked here first, they are usage errors). It is
// the root's PersistentPreRunE: a command with its own calls it too.
func checkFlags(cmd *cobra.Command, args []string) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return usageError{err}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return usageError{err}
	}
	return nil
}

// subPath is cmd's path without "sentry ", for messages that start with
// "sentry: ".
func subPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// strictTree makes every command of the tree keep to the exit codes: a
// group run without a subcommand, or with one it does not have, and a
// wrong number of arguments are usage errors. A command without its own
// exit codes gets the common ones.
func strictTree(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = groupArgs
		c.RunE = runGroup
		c.SuggestionsMinimumDistance = 2
		if _, ok := c.Annotations[exitCodesKey]; !ok {
			exitCodes{group: true}.set(c)
		}
		c.Annotations[groupKey] = "true"
	} else if c.Args != nil {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				err = usageError{err}
			}
			return err
		}
	}
	if _, ok := c.Annotations[exitCodesKey]; !ok {
		exitCodes{}.set(c)
	}
	for _, sub := range c.Commands() {
		strictTree(sub)
	}
}

// groupKey marks a command as a group: run alone it only says which
// subcommands it has.
const groupKey = "sentry:group"

// runGroup is a group run without a subcommand: a usage error.
func runGroup(cmd *cobra.Command, args []string) error {
	if !cmd.HasParent() {
		return usageError{errors.New("no command given")}
	}
	return usageError{fmt.Errorf("%s needs a subcommand: %s", subPath(cmd), strings.Join(subcommandNames(cmd), ", "))}
}

// groupArgs refuses an argument to a group: it can only be a subcommand
// the group does not have.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError{errors.New(msg)}
}

// subcommandNames are cmd's visible subcommands, sorted.
func subcommandNames(cmd *cobra.Command) []string {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	sort.Strings(names)
	return names
}

// newHelpCommand is `sentry help [COMMAND...]`: cobra's, except that an
// unknown topic is a usage error.
func newHelpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]...",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHelp(root, args)
		},
	}
}

func runHelp(root *cobra.Command, args []string) error {
	c, rest, err := root.Find(args)
	if err != nil || c == nil || len(rest) > 0 {
		return usageError{fmt.Errorf("no help topic %q (see 'sentry --help')", strings.Join(args, " "))}
	}
	return c.Help()
}

// exitCodesKey is the annotation that holds a command's exit codes, shown
// in its help and man page.
const exitCodesKey = "sentry:exit-codes"

// exitCodes are what a command's exit codes mean, for its help.
type exitCodes struct {
	fail    string // what 1 means, when more than that the command failed
	invalid string // what 3 means ("" when it reads no configuration file)
	root    string // what 4 means ("" when it need not run as root)
	confirm bool   // it asks for confirmation: 2 also when it cannot ask
	group   bool   // a group of subcommands
}

// configInvalid is what exit code 3 means for a command that reads --config.
const configInvalid = "the configuration file (--config) is invalid"

// agentRoot is what exit code 4 means for a command that asks the agent.
const agentRoot = "not root: the agent's local API (agent.socket) is root's only"

func (e exitCodes) String() string {
	if e.group {
		return "  0  help (--help)\n  2  a missing or unknown subcommand, or a bad flag (each subcommand lists its own codes)"
	}
	if e == (exitCodes{}) {
		return exitCodesHelp
	}
	fail := "the command failed (the message says why)"
	if e.fail != "" {
		fail = e.fail
	}
	lines := []string{"  0  success", "  1  " + fail, "  2  bad flags or arguments"}
	if e.confirm {
		lines[2] += "; no terminal to ask for confirmation on, and no --yes"
	}
	if e.invalid != "" {
		lines = append(lines, "  3  "+e.invalid)
	}
	if e.root != "" {
		lines = append(lines, "  4  "+e.root)
	}
	return strings.Join(lines, "\n")
}

// set records e as c's exit codes and returns c.
func (e exitCodes) set(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[exitCodesKey] = e.String()
	return c
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
