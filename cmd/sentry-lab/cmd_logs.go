package main

import "github.com/spf13/cobra"

func newLogsCommand(f *labFlags) *cobra.Command {
	return &cobra.Command{
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
}
