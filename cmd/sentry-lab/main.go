// Command sentry-lab runs the two-node lab: two real Debian nodes on this
// machine (network namespaces and systemd-nspawn), with the sentry binary
// installed in both. It is a development and test tool, apart from the
// sentry binary an operator runs on a server. See docs/lab.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sentryha/sentry/internal/cli"
	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

// Exit codes, the same as sentry's (internal/cli; sentry-lab reads no
// configuration file, so it has no 3), documented in each command's help.
const (
	exitOK        = cli.ExitOK
	exitFailure   = cli.ExitFailure   // the command failed
	exitUsage     = cli.ExitUsage     // bad flags or arguments
	exitNeedsRoot = cli.ExitNeedsRoot // the lab needs root
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// execute runs the command line args and returns the exit code. An error is
// printed to stderr as "sentry-lab: ..." (a usage error with a pointer to
// the help on a second line), or with --json to stdout as
// {"error": "...", "exit_code": N}.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cli.Program{ExitCode: exitCode}.Execute(ctx, newRootCommand(), args, stdin, stdout, stderr)
}

func exitCode(err error) int {
	switch {
	case cli.IsUsage(err):
		return exitUsage
	case errors.Is(err, lab.ErrNeedRoot):
		return exitNeedsRoot
	}
	return exitFailure
}

// jsonError is how an error is printed with --json.
type jsonError = cli.JSONError

func printJSON(w io.Writer, v any) error { return cli.PrintJSON(w, v) }

// wantsJSON says whether the command line asked for --json (cli.WantsJSON).
func wantsJSON(cmd *cobra.Command, args []string) bool { return cli.WantsJSON(cmd, args) }

// usageError marks an error as the caller's (bad flag or argument).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// BadUsage makes it a usage error for internal/cli (exit code 2).
func (usageError) BadUsage() {}

// exitError carries an exit code that was already explained (by a command
// run inside a lab node).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// ExplainedExit is the exit code, for internal/cli.
func (e exitError) ExplainedExit() int { return e.code }
