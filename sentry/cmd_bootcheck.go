package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/logging"
	"github.com/sentryha/sentry/modules"
	"github.com/spf13/cobra"
)

func newBootcheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootcheck",
		Short: "Decide at boot, from the disk stamp and the hardware, which role this node takes",
		Long: `At boot, before the network and the role's services, sentry-bootcheck.service
runs 'sentry bootcheck run'. It reads the disk stamp and identifies the machine,
and decides as in docs/design.md: primary, secondary, or safe mode. On the other
machine it writes the network configuration for the NICs it finds; before taking
the primary role it makes one bounded check that no one else holds it.`,
	}
	cmd.AddCommand(newBootcheckRunCommand(), newBootcheckExplainCommand(), newBootcheckAdoptCommand(), newBootcheckInstallCommand())
	return cmd
}

func newBootcheckRunCommand() *cobra.Command {
	var asJSON, dry bool
	var window, peerTimeout, budget time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Make the boot decision now (sentry-bootcheck.service runs this at boot)",
		Long: `Make the boot decision, write this boot's network configuration to
/run/systemd/network and the decision to /run/sentry. With --dry-run nothing is
written and no probe is sent: only the decision from stamp and hardware is shown.
It always exits 0 once the decision is written (safe mode is a decision);
1 when it could not write it. Past --budget (keep it below the unit's
TimeoutStartSec, 20 s) it writes a safe-mode decision naming the stage it
was in, rather than be killed by systemd with no decision written.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if budget <= 0 {
				return usageError{fmt.Errorf("bootcheck run: --budget must be more than 0 (got %s)", budget)}
			}
			if os.Geteuid() != 0 && !dry {
				return fmt.Errorf("bootcheck run: %w", errNeedRoot)
			}
			cfg, err := cliConfig(cmd)
			if err != nil {
				return err
			}
			opt := bootcheck.Options{StateDir: cfg.Node.StateDir,
				HW:          hwid.Options{Mode: hwid.Mode(cfg.Hardware.Identity), NICKinds: cfg.Hardware.NICKinds},
				ProbeWindow: window, PeerTimeout: peerTimeout, Budget: budget, NoNetwork: dry, Paths: bootPaths,
				Log: logging.New(cmd.ErrOrStderr(), new(slog.LevelVar), "sentry-bootcheck")}
			if !asJSON {
				// The decision goes to the journal (standard output) and to
				// the machine's console, where the operator who swapped
				// the disks looks.
				opt.Console = cmd.OutOrStdout()
				if !dry {
					// Non-blocking: a console nobody reads (a full
					// terminal buffer) must never hold the boot; the
					// journal, written first, has the decision anyway.
					if con, err := os.OpenFile(bootcheck.ConsolePath, os.O_WRONLY|os.O_APPEND|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0); err == nil {
						defer con.Close()
						opt.Console = io.MultiWriter(cmd.OutOrStdout(), con)
					}
				}
			}
			if dry {
				return runBootcheckDry(cmd.Context(), opt, cmd.OutOrStdout(), asJSON)
			}
			res, err := bootcheck.Run(cmd.Context(), opt)
			if err != nil {
				// The decision could not be written (with --json, the
				// error is what is printed).
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "decide from stamp and hardware only; write nothing, probe nothing")
	cmd.Flags().DurationVar(&window, "probe-window", 600*time.Millisecond, "how long the ARP probe of the primary's addresses listens")
	cmd.Flags().DurationVar(&peerTimeout, "peer-timeout", 1500*time.Millisecond, "deadline of the one hello to the peer agent")
	cmd.Flags().DurationVar(&budget, "budget", bootcheck.DefaultBudget, "the whole run's deadline: past it, safe mode naming the stage (keep it below the unit's TimeoutStartSec)")
	return exitCodes{fail: "the decision could not be written (safe mode is a decision: 0)", invalid: configInvalid, root: "not root (without --dry-run)"}.set(cmd)
}

// bootPaths are the folders the bootcheck commands read and write besides
// the state folder: the zero value, the machine's own. The package's tests
// point them at fixture trees.
var bootPaths bootcheck.Paths

// runBootcheckDry decides without writing: RunDir and the network folder
// go to a throw-away folder.
func runBootcheckDry(ctx context.Context, opt bootcheck.Options, w io.Writer, asJSON bool) error {
	tmp, err := os.MkdirTemp("", "sentry-bootcheck-dry")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	opt.Paths.RunDir, opt.Paths.RunNetworkDir = tmp+"/run", tmp+"/network"
	// The dry run must not overwrite the last boot's record either.
	sd, err := os.MkdirTemp(tmp, "state")
	if err != nil {
		return err
	}
	for _, f := range []string{"stamp.toml", "cluster.toml", bootcheck.AdoptedName, bootcheck.LastName} {
		if b, err := os.ReadFile(opt.StateDir + "/" + f); err == nil {
			os.WriteFile(sd+"/"+f, b, 0o600)
		}
	}
	if _, err := os.Stat(opt.StateDir + "/pki"); err == nil {
		os.Symlink(opt.StateDir+"/pki", sd+"/pki")
	}
	opt.StateDir = sd
	res, err := bootcheck.Run(ctx, opt)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, res)
	}
	return printBootResult(w, res)
}

func newBootcheckExplainCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Print this boot's decision with all its evidence",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := bootPaths.Last()
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no boot decision since this boot (%s/%s is missing): is sentry-bootcheck.service installed? (sentry bootcheck install)", bootPaths.Resolved().RunDir, bootcheck.ResultName)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printBootResult(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "no boot decision since this boot, or it cannot be read"}.set(cmd)
}

func printBootResult(w io.Writer, r *bootcheck.Result) error {
	fmt.Fprintf(w, "decision:   %s\n", strings.ToUpper(r.Outcome))
	fmt.Fprintf(w, "reason:     %s\n", r.Reason)
	fmt.Fprintf(w, "when:       %s (took %.1f ms)\n", r.Time.Local().Format(time.RFC3339), r.TookMS)
	if r.DiskSet != "" {
		fmt.Fprintf(w, "disk set:   %s, role %s, generation %d, cluster %s\n", r.DiskSet, r.Role, r.Generation, r.Cluster)
	}
	fmt.Fprintf(w, "machine:    %s (%s)\n", dash(r.Hardware), dash(r.HardwareSource))
	for _, n := range r.NICs {
		fmt.Fprintf(w, "  nic       %s %s (%s)\n", n.Name, n.MAC, n.Kind)
	}
	fmt.Fprintf(w, "home:       %s (this machine: %v)\n", dash(r.HomeHardware), r.Home)
	if r.PreviousHardware != "" {
		fmt.Fprintf(w, "last boot:  on %s\n", r.PreviousHardware)
	}
	fmt.Fprintf(w, "known:      %s\n", dash(strings.Join(r.KnownMachines, "; ")))
	if r.Failover {
		fmt.Fprintf(w, "failover:   yes: the primary disk set runs away from its home machine\n")
	}
	if r.Network != nil {
		for _, m := range r.Network.Moves {
			fmt.Fprintf(w, "network:    %s\n", m)
		}
		for nic, addrs := range r.Network.Addresses {
			fmt.Fprintf(w, "addresses:  %s: %s\n", nic, strings.Join(addrs, " "))
		}
	}
	for _, p := range r.Probes {
		fmt.Fprintf(w, "probe:      %s %s: %s (%.0f ms)\n", p.Name, p.Target, p.Detail, p.MS)
	}
	if d := r.Drivers; d != nil {
		fmt.Fprintf(w, "drivers:    %s (kernel %s): %s\n", d.Boots, dash(d.Kernel), strings.Join(d.Because, "; "))
	}
	for _, s := range r.Stages {
		e := ""
		if s.Error != "" {
			e = ": " + s.Error
		}
		fmt.Fprintf(w, "stage:      %-18s %7.2f ms%s\n", s.Name, s.MS, e)
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "warning:    %s\n", wn)
	}
	if r.Outcome == bootcheck.SafeMode {
		fmt.Fprintf(w, "\nThe role's services are held; ssh and the agent run.\n")
		if r.UnknownMachine {
			fmt.Fprintf(w, "If this machine replaces one of the cluster's, accept it with `sentry bootcheck adopt`.\n")
		}
	}
	return nil
}

func newBootcheckAdoptCommand() *cobra.Command {
	var yes, asJSON, force bool
	var replaces string
	cmd := &cobra.Command{
		Use:   "adopt",
		Short: "Accept this machine (unknown to the cluster) as a replacement, and leave safe mode",
		Long: `When a disk set boots on a machine the cluster does not know (a replaced
mainboard, a new server), bootcheck holds it in safe mode. 'adopt' records this
machine on this disk set as the replacement of another (default: the disk set's
home machine), decides again, and starts the role's services. It refuses to
replace a machine the other node was last seen running on (--replaces names
another; --force when that news is old). It asks for confirmation on a
terminal; --yes does not ask.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBootcheckAdopt(cmd, replaces, yes, force, asJSON)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().StringVar(&replaces, "replaces", "", "the machine id this one replaces (default: the disk set's home)")
	cmd.Flags().BoolVar(&force, "force", false, "adopt even though the other node was last seen on the machine to be replaced")
	return exitCodes{fail: "not adopted (no decision to act on, the answer was not yes, or the agent refused)",
		invalid: configInvalid, root: agentRoot, confirm: true}.set(cmd)
}

func runBootcheckAdopt(cmd *cobra.Command, replaces string, yes, force, asJSON bool) error {
	if err := canConfirm(cmd, yes); err != nil {
		return err
	}
	res, err := bootPaths.Last()
	if err != nil {
		return fmt.Errorf("no boot decision to act on: %w", err)
	}
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	if err := confirm(cmd, yes, fmt.Sprintf("This boot is %s: %s\nAdopt machine %s in place of %s?",
		res.Outcome, res.Reason, res.Hardware, orDefault(replaces, res.HomeHardware)), "not adopted"); err != nil {
		return err
	}
	ar, err := c.Adopt(cmd.Context(), replaces, force)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), ar)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "adopted %s in place of %s\n", ar.Machine, ar.Replaces)
	return printBootResult(cmd.OutOrStdout(), ar.Result)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func newBootcheckInstallCommand() *cobra.Command {
	var root string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install sentry-bootcheck.service, sentry-role.target and the role services' drop-ins",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBootcheckInstall(cmd.OutOrStdout(), root, asJSON)
		},
	}
	cmd.Flags().StringVar(&root, "root", "/", "the system's root folder (for an image or a chroot)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (the files written)")
	return exitCodes{fail: "a file could not be written"}.set(cmd)
}

func runBootcheckInstall(w io.Writer, root string, asJSON bool) error {
	units := append([]string{}, bootcheck.RoleUnits...)
	// The selected modules' services are the role's too (system ones,
	// such as ssh, stay up in safe mode).
	if set, _, err := modules.Load(modules.OptionsAt(root)); err == nil {
		for _, m := range set.Modules() {
			if m.Kind == "system" {
				continue
			}
			for _, u := range m.Units {
				if !slices.Contains(units, u.Name) {
					units = append(units, u.Name)
				}
			}
		}
	}
	res, err := bootcheck.Install(root, units)
	if asJSON {
		if err != nil {
			// The error is what --json prints: it names what was
			// written and removed before it.
			if done := append(append([]string{}, res.Wrote...), res.Removed...); len(done) > 0 {
				err = fmt.Errorf("%w (done before it: %s)", err, strings.Join(done, ", "))
			}
			return err
		}
		if res.Wrote == nil {
			res.Wrote = []string{}
		}
		return printJSON(w, res)
	}
	for _, p := range res.Removed {
		fmt.Fprintf(w, "removed %s (the package's unit is used)\n", p)
	}
	for _, p := range res.Wrote {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	return err
}
