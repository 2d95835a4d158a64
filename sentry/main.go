// Command sentry is the Sentry CLI and, as `sentry agent`, its daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/lab"
)

// Exit codes, documented in `sentry --help` and docs/operations.md.
const (
	exitOK        = 0
	exitFailure   = 1 // the command failed
	exitUsage     = 2 // bad flags or arguments
	exitConfig    = 3 // the configuration file is invalid
	exitNeedsRoot = 4 // the command must run as root
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	root.SetContext(ctx)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "sentry:", err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, config.ErrInvalid):
		return exitConfig
	case errors.Is(err, lab.ErrNeedRoot), errors.Is(err, errNeedRoot):
		return exitNeedsRoot
	}
	return exitFailure
}

// errNeedRoot is returned by commands that must run as root.
var errNeedRoot = errors.New("this command must run as root")

// usageError marks an error as the caller's (bad flag or argument).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// exitError carries an exit code that was already explained on the terminal
// (a command run inside a lab node, say).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
