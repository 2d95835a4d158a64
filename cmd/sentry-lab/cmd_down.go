package main

import "github.com/spf13/cobra"

func newDownCommand(f *labFlags) *cobra.Command {
	return &cobra.Command{
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
}
