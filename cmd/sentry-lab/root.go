package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sentryha/sentry/internal/cli"
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
	noBootcheckInstall                       bool
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
		NoBootcheckInstall: f.noBootcheckInstall,
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
		PersistentPreRunE: cli.CheckFlags,
	}
	root.SetFlagErrorFunc(cli.FlagError)
	pf := root.PersistentFlags()
	pf.StringVar(&f.name, "name", "", "lab name: prefixes the namespaces and names its state folder")
	pf.StringVar(&f.cacheDir, "cache-dir", lab.DefaultCacheDir, "where the base root filesystem is cached")
	pf.StringVar(&f.stateDir, "state-dir", lab.DefaultStateDir, "where disk sets, logs and the lab state live")
	pf.StringVar(&f.mirror, "mirror", "", "Debian mirror for building the base (default: the host's apt source)")
	pf.DurationVar(&f.bootTimeout, "boot-timeout", 3*time.Minute, "how long to wait for a node's services")
	pf.StringVar(&f.sentry, "sentry", "", "the sentry binary, or its Debian package (.deb, installed with dpkg), to install into the nodes (default: sentry beside sentry-lab)")
	pf.BoolVar(&f.noBootcheckInstall, "no-bootcheck-install", false, "do not run `sentry bootcheck install` in new disk sets (the role services get no drop-ins)")

	cmds := []*cobra.Command{newUpCommand(f), newDownCommand(f), newStatusCommand(f), newExecCommand(f),
		newSwapCommand(f), newLogsCommand(f), newPairCommand(f), newMoveCommand(f)}
	for _, c := range cmds {
		if _, ok := c.Annotations[exitCodesKey]; !ok {
			exitCodes{root: labRoot}.set(c)
		}
		root.AddCommand(c)
	}
	root.AddCommand(newManCommand(root))
	root.SetHelpCommand(cli.NewHelpCommand(root, "help [COMMAND]"))
	root.CompletionOptions.DisableDefaultCmd = true
	root.InitDefaultHelpCmd()
	cli.SetExitCodes(root, exitCodesHelp)
	root.SetUsageTemplate(cli.UsageTemplate)
	cli.Strict(root, cli.StrictOptions{ExitCodes: cli.ExitCodes{}.String(), ListCommands: true})
	return root
}

// exitCodesKey is the annotation that holds a command's exit codes.
const exitCodesKey = cli.ExitCodesKey

// groupKey marks a command as a group of subcommands.
const groupKey = cli.GroupKey

// exitCodes are what a command's exit codes mean, for its help.
type exitCodes struct {
	fail string // what 1 means, when more than that the command failed
	root string // what 4 means ("" when it need not run as root)
}

// set records e as c's exit codes and returns c.
func (e exitCodes) set(c *cobra.Command) *cobra.Command {
	return cli.ExitCodes{Fail: e.fail, Root: e.root}.Set(c)
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs { return cli.ExactArgs(n) }

func noArgs(cmd *cobra.Command, args []string) error { return cli.NoArgs(cmd, args) }
