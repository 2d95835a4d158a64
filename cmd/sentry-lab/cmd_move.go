package main

import (
	"fmt"
	"time"

	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

func newMoveCommand(f *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "move SET MACHINE",
		Short: "Power disk set SET (P or S) off and boot it on MACHINE (a, b, c, or off)",
		Long: `Carry one disk set into a machine: power it off if it runs, and boot it on
MACHINE (hw-a, hw-b, or hw-c, a third machine the cluster does not know). The
same machine it runs on is a reboot; "off" only powers it off. Waits until the
node is ready, or holds in safe mode.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l *lab.Lab
			var err error
			if args[1] == "off" {
				l, err = f.lab(cmd)
			} else {
				l, err = f.installer(cmd)
			}
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
}
