package main

import (
	"fmt"
	"time"

	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

func newUpCommand(f *labFlags) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up: P on hw-a, S on hw-b, every service running",
		Long: `Bring the lab up. Builds the base once (debootstrap, cached), clears any
earlier lab of the same name (its recorded processes, mounts, namespaces),
creates the network, installs the sentry binary (--sentry) into both disk
sets, boots them and waits until every lab service is active on both.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.installer(cmd)
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
	cmd.Flags().BoolVar(&keep, "keep-disks", false, "keep what the disk sets wrote before instead of installing them afresh")
	return cmd
}
