package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

func newStatusCommand(f *labFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
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
			return printStatus(cmd.OutOrStdout(), st, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printStatus(w io.Writer, st *lab.Status, asJSON bool) error {
	if asJSON {
		return printJSON(w, st)
	}
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "lab is down (start it with: sentry-lab up)")
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
