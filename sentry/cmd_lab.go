package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

type labFlags struct {
	name, cacheDir, stateDir, mirror string
	bootTimeout                      time.Duration
}

func (f *labFlags) lab(cmd *cobra.Command) (*lab.Lab, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return lab.New(lab.Options{
		Name: f.name, CacheDir: f.cacheDir, StateDir: f.stateDir, Mirror: f.mirror,
		Binary: bin, Log: cmd.ErrOrStderr(), BootTimeout: f.bootTimeout,
	}), nil
}

func newLabCommand() *cobra.Command {
	lab.AgentUnit = agent.Unit
	f := &labFlags{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run two real Debian nodes on this machine (network namespaces + systemd-nspawn)",
		Long: `The lab is two "hardware" nodes (network namespaces hw-a and hw-b with fixed
MACs, cabled to an "office" namespace) and two disk sets (P and S, overlays on a
cached Debian base) booted with systemd-nspawn. It needs root. See docs/lab.md.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.name, "name", "", "lab name: prefixes the namespaces and names its state folder")
	pf.StringVar(&f.cacheDir, "cache-dir", lab.DefaultCacheDir, "where the base root filesystem is cached")
	pf.StringVar(&f.stateDir, "state-dir", lab.DefaultStateDir, "where disk sets, logs and the lab state live")
	pf.StringVar(&f.mirror, "mirror", "", "Debian mirror for building the base (default: the host's apt source)")
	pf.DurationVar(&f.bootTimeout, "boot-timeout", 3*time.Minute, "how long to wait for a node's services")

	var keep bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up: P on hw-a, S on hw-b, every service running",
		Long: `Bring the lab up. Builds the base once (debootstrap, cached), clears any
earlier lab of the same name (its recorded processes, mounts, namespaces),
creates the network, installs this sentry binary into both disk sets, boots
them and waits until every lab service is active on both.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := l.Up(cmd.Context(), lab.UpOptions{KeepDisks: keep}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lab: up in %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		},
	}
	up.Flags().BoolVar(&keep, "keep-disks", false, "keep what the disk sets wrote before instead of installing them afresh")

	down := &cobra.Command{
		Use:   "down",
		Short: "Power both nodes off and remove the lab's mounts and namespaces",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			return l.Down(cmd.Context())
		},
	}

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show which disk set runs on which hardware, and its services",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			return printLabStatus(cmd.OutOrStdout(), st, asJSON)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print as JSON")

	exec := &cobra.Command{
		Use:   "exec NODE -- COMMAND [ARG...]",
		Short: "Run a command inside a node (NODE: P, S, node-p, node-s, hw-a or hw-b)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("exec needs a node and a command: sentry lab exec P -- systemctl status")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			code, err := l.Exec(cmd.Context(), args[0], args[1:], os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}

	swap := &cobra.Command{
		Use:   "swap",
		Short: "Power both nodes off, move each disk set into the other machine, boot them",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := l.Swap(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lab: swapped in %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		},
	}

	logs := &cobra.Command{
		Use:   "logs NODE",
		Short: "Print a disk set's console log (every boot) and the journal of its running boot",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			return l.Logs(cmd.Context(), args[0], cmd.OutOrStdout())
		},
	}
	move := &cobra.Command{
		Use:   "move SET MACHINE",
		Short: "Power disk set SET (P or S) off and boot it on MACHINE (a, b, c, or off)",
		Long: `Carry one disk set into a machine: power it off if it runs, and boot it on
MACHINE (hw-a, hw-b, or hw-c, a third machine the cluster does not know). The
same machine it runs on is a reboot; "off" only powers it off. Waits until the
node is ready, or holds in safe mode.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := l.Move(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "lab: %s on %s in %s\n", args[0], args[1], time.Since(start).Round(100*time.Millisecond))
			return nil
		},
	}
	var cluster string
	pair := &cobra.Command{
		Use:   "pair",
		Short: "Pair the lab's nodes: sentry init on P, sentry join on S",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			return runLabPair(cmd, l, cluster)
		},
	}
	pair.Flags().StringVar(&cluster, "cluster", "office", "cluster name")
	labRoot := "not root: the lab needs namespaces, mounts and systemd-nspawn"
	for _, c := range []*cobra.Command{up, down, status, swap, logs, pair, move} {
		exitCodes{root: labRoot}.set(c)
	}
	exitCodes{fail: "the exit code of the command run in the node; 1 when it could not be run", root: labRoot}.set(exec)
	cmd.AddCommand(up, down, status, exec, swap, logs, pair, move)
	return cmd
}

func printLabStatus(w io.Writer, st *lab.Status, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "lab is down (start it with: sentry lab up)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISK SET\tHOST\tHARDWARE\tSTATE\tNIC\tADDRESS")
	for _, n := range st.Nodes {
		state := "off"
		if n.Running {
			state = n.SystemState
		}
		nic, addr := "-", "-"
		if len(n.NICs) > 0 {
			nic = n.NICs[0].Name + " " + n.NICs[0].MAC
			if len(n.NICs[0].Address) > 0 {
				addr = strings.Join(n.NICs[0].Address, ",")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.DiskSet, n.Hostname, n.Hardware, state, nic, addr)
	}
	tw.Flush()
	for _, n := range st.Nodes {
		if !n.Running {
			continue
		}
		names := make([]string, 0, len(n.Services))
		for s := range n.Services {
			names = append(names, s)
		}
		sort.Strings(names)
		var parts []string
		for _, s := range names {
			parts = append(parts, s+"="+n.Services[s])
		}
		fmt.Fprintf(w, "%s services: %s\n", n.DiskSet, strings.Join(parts, " "))
		if n.Error != "" {
			fmt.Fprintf(w, "%s error: %s\n", n.DiskSet, n.Error)
		}
	}
	return nil
}

// runLabPair runs the operator's two pairing commands inside the lab's
// nodes, through their own sentry binaries and agents.
func runLabPair(cmd *cobra.Command, l *lab.Lab, cluster string) error {
	var out, errb strings.Builder
	code, err := l.Exec(cmd.Context(), "P", []string{"sentry", "init", "--cluster", cluster, "--json"}, nil, &out, &errb)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("sentry init on P: %s", strings.TrimSpace(errb.String()))
	}
	var ir agent.InitResult
	if err := json.Unmarshal([]byte(out.String()), &ir); err != nil {
		return fmt.Errorf("sentry init on P printed %q: %w", out.String(), err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "lab: P: sentry init --cluster %s: cluster %s, CA %s...\n", cluster, ir.ClusterID, ir.CAFingerprint[:16])
	primary := strings.Split(lab.Sets[0].Address, "/")[0] + ":7443"
	errb.Reset()
	// The token through stdin: not on a command line the node's ps shows.
	code, err = l.Exec(cmd.Context(), "S", []string{"sentry", "join", "-", primary}, strings.NewReader(ir.Token+"\n"), cmd.ErrOrStderr(), &errb)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("sentry join on S: %s", strings.TrimSpace(errb.String()))
	}
	return nil
}
