package main

import (
	"context"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"

	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/synchronizer/inventory"
	"github.com/spf13/cobra"
)

func newCompatCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compat",
		Short: "Cross-boot compatibility: does disk set P boot on machine B, and S on A",
		Long: `Say for both directions of a disk swap whether the disk set boots on the
other machine: for every PCI device of that machine, a module of the disk
set's boot kernel that matches it, storage drivers in the initramfs, and the
firmware the module needs; with the evidence per device and, for what fails,
the fix the parity plan has. It exits 0 only when both disk sets boot on the
other machine.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runCompat(cmd.Context(), c, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "a disk set does not boot on the other machine, or that is unknown; or the command failed",
		invalid: configInvalid, root: agentRead}.set(cmd)
}

// compatJSON is what compat --json prints.
type compatJSON struct {
	PonB  *inventory.CompatReport `json:"p_on_b"`
	SonA  *inventory.CompatReport `json:"s_on_a"`
	Fixes []inventory.DiskSetFix  `json:"fixes"`
}

func runCompat(ctx context.Context, c *agentclient.Client, w io.Writer, asJSON bool) error {
	r, err := c.Parity(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		fixes := r.Plan.DiskSetFixes
		if fixes == nil {
			fixes = []inventory.DiskSetFix{}
		}
		if err := printJSON(w, compatJSON{PonB: r.CompatPonB, SonA: r.CompatSonA, Fixes: fixes}); err != nil {
			return err
		}
		return compatExit(r)
	}
	if r.CompatPonB == nil && r.CompatSonA == nil {
		fmt.Fprintln(w, "compatibility unknown: both inventories are needed, or this node's and a stored profile of the other machine")
		printInventoryErrors(w, r)
		printProfileError(w, r)
		return compatExit(r)
	}
	for _, x := range []struct {
		set string
		rep *inventory.CompatReport
	}{{"P", r.CompatPonB}, {"S", r.CompatSonA}} {
		if x.rep == nil {
			// The other direction was judged on a stored profile: this
			// one is the peer's disk set on this machine.
			fmt.Fprintf(w, "disk set %s boots on this machine: unknown: the peer's inventory (disk set %s's software) is needed\n\n", x.set, x.set)
			continue
		}
		fmt.Fprint(w, x.rep.Text())
		for _, f := range r.Plan.DiskSetFixes {
			if f.DiskSet != x.set {
				continue
			}
			switch f.Action {
			case "install-package", "install-firmware":
				fmt.Fprintf(w, "  fix: install %s on disk set %s (module %s%s) for %s\n", f.Package, x.set, dash(f.Module), fwNote(f.Firmware), f.Device)
			case "add-to-initramfs":
				fmt.Fprintf(w, "  fix: add %s to the initramfs of disk set %s\n", f.Module, x.set)
			default:
				fmt.Fprintf(w, "  no known fix for %s: %s\n", f.Device, f.Reason)
			}
		}
		fmt.Fprintln(w)
	}
	printInventoryErrors(w, r)
	printProfileError(w, r)
	return compatExit(r)
}

// compatExit is exit status 1 unless both disk sets boot on the other
// machine ("no" or "unknown" in either direction).
func compatExit(r *parity.Report) error {
	for _, rep := range []*inventory.CompatReport{r.CompatPonB, r.CompatSonA} {
		if rep == nil || rep.Boots != "yes" {
			return exitError{exitFailure}
		}
	}
	return nil
}

// printProfileError says which stored hardware profiles could not be read.
func printProfileError(w io.Writer, r *parity.Report) {
	if r.ProfileError != "" {
		fmt.Fprintf(w, "stored machine profiles: %s\n", r.ProfileError)
	}
}

func fwNote(fw string) string {
	if fw == "" {
		return ""
	}
	return ", firmware " + fw
}
