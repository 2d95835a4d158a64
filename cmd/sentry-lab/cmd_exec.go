package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newExecCommand(f *labFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NODE -- COMMAND [ARG...]",
		Short: "Run a command inside a node (NODE: P, S, node-p, node-s, hw-a or hw-b)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("exec needs a node and a command: sentry-lab exec P -- systemctl status")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			code, err := l.Exec(cmd.Context(), args[0], args[1:], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	return exitCodes{fail: "the exit code of the command run in the node; 1 when it could not be run", root: labRoot}.set(cmd)
}
