package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// errNotConfirmed is a question answered with anything but "yes".
var errNotConfirmed = errors.New("the answer was not 'yes'")

// isTerminal says whether r is a terminal, where the operator can answer.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// canConfirm is nil when a command that changes the node may go on to ask
// (or need not ask, with --yes). Without a terminal and without --yes it
// is a usage error: a script must say --yes, and a pipe does not answer.
// Commands check it before anything else, so that nothing is done that
// cannot be confirmed.
func canConfirm(cmd *cobra.Command, yes bool) error {
	if yes || isTerminal(cmd.InOrStdin()) {
		return nil
	}
	return usageError{fmt.Errorf("%s asks for confirmation, and there is no terminal to ask on: pass --yes", subPath(cmd))}
}

// confirm asks question on the terminal (the prompt on stderr, so that
// stdout keeps only the result) unless yes. An answer other than "yes" is
// the error "<refused>: the answer was not 'yes'".
func confirm(cmd *cobra.Command, yes bool, question, refused string) error {
	if yes {
		return nil
	}
	if err := canConfirm(cmd, yes); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s Type 'yes': ", question)
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	if answer != "yes" {
		return fmt.Errorf("%s: %w", refused, errNotConfirmed)
	}
	return nil
}
