package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newSwapCommand(f *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "swap",
		Short: "Power both nodes off, move each disk set into the other machine, boot them",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.installer(cmd)
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
}
