package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// exitCodesHelp is the table every command follows; each command's help
// says what the codes mean for it (exitCodes).
const exitCodesHelp = `  0  success
  1  the command failed (exec: the command run in the node exited 1, or could not be run)
  2  bad flags or arguments
  4  ` + labRoot

// labRoot is what exit code 4 means for every command that works on the
// lab.
const labRoot = "not root: the lab needs namespaces, mounts and systemd-nspawn"

// labFlags are the flags of every command: which lab, where it lives,
// and the sentry binary it installs.
type labFlags struct {
	name, cacheDir, stateDir, mirror, sentry string
	bootTimeout                              time.Duration
}

// sentryBinary is the sentry binary the lab installs into the nodes:
// --sentry, or the file sentry beside this sentry-lab.
func (f *labFlags) sentryBinary() (string, error) {
	if f.sentry != "" {
		return f.sentry, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("where is sentry-lab (to find sentry beside it)? %w; pass --sentry", err)
	}
	return filepath.Join(filepath.Dir(self), "sentry"), nil
}

// lab is the lab the flags name.
func (f *labFlags) lab(cmd *cobra.Command) (*lab.Lab, error) {
	bin, err := f.sentryBinary()
	if err != nil {
		return nil, err
	}
	return lab.New(lab.Options{
		Name: f.name, CacheDir: f.cacheDir, StateDir: f.stateDir, Mirror: f.mirror,
		Binary: bin, Log: cmd.ErrOrStderr(), Terminal: isTerminal(cmd.ErrOrStderr()), BootTimeout: f.bootTimeout,
	}), nil
}

// isTerminal says whether w is a terminal (the lab's progress is then one
// line rewritten in place).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// installer is the lab of a command that boots a disk set, after checking
// that the sentry binary it installs is there.
func (f *labFlags) installer(cmd *cobra.Command) (*lab.Lab, error) {
	bin, err := f.sentryBinary()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(bin)
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a file", bin)
	}
	if err != nil {
		return nil, fmt.Errorf("the sentry binary to install into the nodes: %w (make build puts it beside sentry-lab; or pass --sentry PATH)", err)
	}
	return f.lab(cmd)
}

func newRootCommand() *cobra.Command {
	f := &labFlags{}
	root := &cobra.Command{
		Use:   "sentry-lab",
		Short: "Run two real Debian nodes on this machine (network namespaces + systemd-nspawn)",
		Long: `The lab is two "hardware" nodes (network namespaces hw-a and hw-b with fixed
MACs, cabled to an "office" namespace) and two disk sets (P and S, overlays on a
cached Debian base) booted with systemd-nspawn, with the sentry binary
installed in both. It needs root. See docs/lab.md.

The sentry binary installed is --sentry, or the file sentry beside
sentry-lab (make build puts both in bin/).`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: checkFlags,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// A group given a command it does not have and a flag it does
		// not have ("sentry-lab nosuch --json"): the command is the
		// mistake.
		if args := c.Flags().Args(); c.Annotations[groupKey] != "" && len(args) > 0 {
			return groupArgs(c, args)
		}
		return usageError{err}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&f.name, "name", "", "lab name: prefixes the namespaces and names its state folder")
	pf.StringVar(&f.cacheDir, "cache-dir", lab.DefaultCacheDir, "where the base root filesystem is cached")
	pf.StringVar(&f.stateDir, "state-dir", lab.DefaultStateDir, "where disk sets, logs and the lab state live")
	pf.StringVar(&f.mirror, "mirror", "", "Debian mirror for building the base (default: the host's apt source)")
	pf.DurationVar(&f.bootTimeout, "boot-timeout", 3*time.Minute, "how long to wait for a node's services")
	pf.StringVar(&f.sentry, "sentry", "", "the sentry binary to install into the nodes (default: sentry beside sentry-lab)")

	cmds := []*cobra.Command{newUpCommand(f), newDownCommand(f), newStatusCommand(f), newExecCommand(f),
		newSwapCommand(f), newLogsCommand(f), newPairCommand(f), newMoveCommand(f)}
	for _, c := range cmds {
		if _, ok := c.Annotations[exitCodesKey]; !ok {
			exitCodes{root: labRoot}.set(c)
		}
		root.AddCommand(c)
	}
	root.AddCommand(newManCommand(root))
	root.SetHelpCommand(newHelpCommand(root))
	root.CompletionOptions.DisableDefaultCmd = true
	root.InitDefaultHelpCmd()
	root.Annotations = map[string]string{exitCodesKey: exitCodesHelp}
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
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{with index .Annotations "` + exitCodesKey + `"}}

Exit codes:
{{.}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// checkFlags checks the required flags and the flag groups (cobra reports
// them as plain errors; checked here first, they are usage errors).
func checkFlags(cmd *cobra.Command, args []string) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return usageError{err}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return usageError{err}
	}
	return nil
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
		return usageError{fmt.Errorf("no command given: %s", strings.Join(subcommandNames(cmd), ", "))}
	}
	return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.Name(), strings.Join(subcommandNames(cmd), ", "))}
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

// newHelpCommand is `sentry-lab help [COMMAND]`: cobra's, except that an
// unknown topic is a usage error.
func newHelpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || c == nil || len(rest) > 0 {
				return usageError{fmt.Errorf("no help topic %q (see 'sentry-lab --help')", strings.Join(args, " "))}
			}
			return c.Help()
		},
	}
}

// exitCodesKey is the annotation that holds a command's exit codes, shown
// in its help and man page.
const exitCodesKey = "sentry:exit-codes"

// exitCodes are what a command's exit codes mean, for its help.
type exitCodes struct {
	fail  string // what 1 means, when more than that the command failed
	root  string // what 4 means ("" when it need not run as root)
	group bool   // a group of subcommands
}

func (e exitCodes) String() string {
	if e.group {
		return "  0  help (--help)\n  2  a missing or unknown subcommand, or a bad flag (each subcommand lists its own codes)"
	}
	fail := "the command failed (the message says why)"
	if e.fail != "" {
		fail = e.fail
	}
	lines := []string{"  0  success", "  1  " + fail, "  2  bad flags or arguments"}
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
