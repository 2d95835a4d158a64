package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// ExitCodesKey is the annotation that holds a command's exit codes, shown
// in its help (UsageTemplate) and man page.
const ExitCodesKey = "sentry:exit-codes"

// GroupKey marks a command as a group: run alone it only says which
// subcommands it has.
const GroupKey = "sentry:group"

// GroupExitCodes are the exit codes of a group of subcommands.
const GroupExitCodes = "  0  help (--help)\n  2  a missing or unknown subcommand, or a bad flag (each subcommand lists its own codes)"

// ExitCodes are what a command's exit codes mean, for its help.
type ExitCodes struct {
	Fail    string // what 1 means, when more than that the command failed
	Invalid string // what 3 means ("" when it reads no configuration file)
	Root    string // what 4 means ("" when it need not run as root)
	Confirm bool   // it asks for confirmation: 2 also when it cannot ask
	Group   bool   // a group of subcommands
}

func (e ExitCodes) String() string {
	if e.Group {
		return GroupExitCodes
	}
	fail := "the command failed (the message says why)"
	if e.Fail != "" {
		fail = e.Fail
	}
	lines := []string{"  0  success", "  1  " + fail, "  2  bad flags or arguments"}
	if e.Confirm {
		lines[2] += "; no terminal to ask for confirmation on, and no --yes"
	}
	if e.Invalid != "" {
		lines = append(lines, "  3  "+e.Invalid)
	}
	if e.Root != "" {
		lines = append(lines, "  4  "+e.Root)
	}
	return strings.Join(lines, "\n")
}

// Set records e as c's exit codes and returns c.
func (e ExitCodes) Set(c *cobra.Command) *cobra.Command { return SetExitCodes(c, e.String()) }

// SetExitCodes records text as c's exit codes and returns c.
func SetExitCodes(c *cobra.Command, text string) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[ExitCodesKey] = text
	return c
}

// UsageTemplate is cobra's, with the groups' use line (a group runs only
// its subcommands) and each command's exit codes.
const UsageTemplate = `Usage:{{if and .Runnable (not (index .Annotations "` + GroupKey + `"))}}
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
  {{rpad .CommandPath .CommandPathPadding}} {{.Short}}{{end}}{{end}}{{end}}{{with index .Annotations "` + ExitCodesKey + `"}}

Exit codes:
{{.}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// CheckFlags checks the required flags and the flag groups (cobra reports
// them as plain errors; checked here first, they are usage errors). It is
// meant as the root's PersistentPreRunE: a command with its own calls it
// too.
func CheckFlags(cmd *cobra.Command, args []string) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return UsageError{err}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return UsageError{err}
	}
	return nil
}

// FlagError is the root's flag error func: a bad flag is a usage error. A
// group given a command it does not have and a flag it does not have
// ("sentry nosuch --json"): the command is the mistake.
func FlagError(c *cobra.Command, err error) error {
	if args := c.Flags().Args(); c.Annotations[GroupKey] != "" && len(args) > 0 {
		return GroupArgs(c, args)
	}
	return UsageError{err}
}

// SubPath is cmd's path without the root's name, for messages that start
// with "NAME: ".
func SubPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// StrictOptions say what differs between the binaries' trees.
type StrictOptions struct {
	// ExitCodes are the exit codes of a command that names none of its own.
	ExitCodes string
	// ListCommands: the root run alone lists its commands in the error
	// ("no command given: down, exec, ...").
	ListCommands bool
}

// Strict makes every command of the tree keep to the exit codes: a group
// run without a subcommand, or with one it does not have, and a wrong
// number of arguments are usage errors. A command without its own exit
// codes gets opt.ExitCodes.
func Strict(c *cobra.Command, opt StrictOptions) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = GroupArgs
		c.RunE = func(cmd *cobra.Command, args []string) error { return runGroup(cmd, opt.ListCommands) }
		c.SuggestionsMinimumDistance = 2
		if _, ok := c.Annotations[ExitCodesKey]; !ok {
			SetExitCodes(c, GroupExitCodes)
		}
		c.Annotations[GroupKey] = "true"
	} else if c.Args != nil {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			if err != nil && !IsUsage(err) {
				err = UsageError{err}
			}
			return err
		}
	}
	if _, ok := c.Annotations[ExitCodesKey]; !ok {
		SetExitCodes(c, opt.ExitCodes)
	}
	for _, sub := range c.Commands() {
		Strict(sub, opt)
	}
}

// runGroup is a group run without a subcommand: a usage error.
func runGroup(cmd *cobra.Command, list bool) error {
	if !cmd.HasParent() {
		if list {
			return UsageError{fmt.Errorf("no command given: %s", strings.Join(SubcommandNames(cmd), ", "))}
		}
		return UsageError{errors.New("no command given")}
	}
	return UsageError{fmt.Errorf("%s needs a subcommand: %s", SubPath(cmd), strings.Join(SubcommandNames(cmd), ", "))}
}

// GroupArgs refuses an argument to a group: it can only be a subcommand
// the group does not have.
func GroupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return UsageError{errors.New(msg)}
}

// SubcommandNames are cmd's visible subcommands, sorted.
func SubcommandNames(cmd *cobra.Command) []string {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	sort.Strings(names)
	return names
}

// NewHelpCommand is `NAME help [COMMAND]`: cobra's, except that an unknown
// topic is a usage error. use is its use line ("help [COMMAND]...").
func NewHelpCommand(root *cobra.Command, use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			return Help(root, args)
		},
	}
}

// Help shows the help of the command args name, or says that there is
// none (a usage error).
func Help(root *cobra.Command, args []string) error {
	c, rest, err := root.Find(args)
	if err != nil || c == nil || len(rest) > 0 {
		return UsageError{fmt.Errorf("no help topic %q (see '%s --help')", strings.Join(args, " "), root.Name())}
	}
	return c.Help()
}

// ExactArgs is cobra.ExactArgs with a usage error.
func ExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return UsageError{err}
		}
		return nil
	}
}

// NoArgs is cobra.NoArgs with a usage error.
func NoArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return UsageError{err}
	}
	return nil
}
