// Command sentry is the Sentry CLI and, as `sentry agent`, its daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sentryha/sentry/internal/cli"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/modules"
	"github.com/spf13/cobra"
)

// Exit codes, documented in `sentry --help`, in each command's help and in
// docs/operations.md. The table is shared with sentry-lab (internal/cli).
const (
	exitOK        = cli.ExitOK
	exitFailure   = cli.ExitFailure   // the command failed (drift, compat: not in step; verify: a probe failed)
	exitUsage     = cli.ExitUsage     // bad flags or arguments; a confirmation that cannot be asked
	exitConfig    = cli.ExitConfig    // the configuration file (or a module manifest) is invalid
	exitNeedsRoot = cli.ExitNeedsRoot // the command must run as root
	exitUnknown   = cli.ExitUnknown   // sentry ready: the verdict is UNKNOWN
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// execute runs the command line args and returns the exit code. An error is
// printed to stderr as "sentry: ..." (a usage error with a pointer to the
// help on a second line), or with --json to stdout as
// {"error": "...", "exit_code": N}.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	p := cli.Program{ExitCode: exitCode, Context: errorContext}
	return p.Execute(ctx, newRootCommand(), args, stdin, stdout, stderr)
}

func exitCode(err error) int {
	switch {
	case cli.IsUsage(err):
		return exitUsage
	case errors.Is(err, config.ErrInvalid):
		return exitConfig
	case errors.Is(err, errNeedRoot), errors.Is(err, agentclient.ErrNeedRoot):
		return exitNeedsRoot
	}
	return exitFailure
}

// jsonError is how an error is printed with --json.
type jsonError = cli.JSONError

// wantsJSON says whether the command line asked for --json (cli.WantsJSON).
func wantsJSON(cmd *cobra.Command, args []string) bool { return cli.WantsJSON(cmd, args) }

// errorContext is the lines around a syntax error in a configuration file
// or a module manifest, when known.
func errorContext(err error) string {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Context
	}
	var me *modules.Error
	if errors.As(err, &me) {
		return me.Context
	}
	return ""
}

// errNeedRoot is returned by commands that must run as root.
var errNeedRoot = errors.New("this command must run as root")

// usageError marks an error as the caller's (bad flag or argument).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// BadUsage makes it a usage error for internal/cli (exit code 2).
func (usageError) BadUsage() {}

// exitError carries an exit code that was already explained (by the
// result printed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// ExplainedExit is the exit code, for internal/cli.
func (e exitError) ExplainedExit() int { return e.code }
