// Command sentry is the Sentry CLI and, as `sentry agent`, its daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/modules"
	"github.com/spf13/cobra"
)

// Exit codes, documented in `sentry --help`, in each command's help and in
// docs/operations.md.
const (
	exitOK        = 0
	exitFailure   = 1 // the command failed (drift, compat: not in step; verify: a probe failed)
	exitUsage     = 2 // bad flags or arguments; a confirmation that cannot be asked
	exitConfig    = 3 // the configuration file (or a module manifest) is invalid
	exitNeedsRoot = 4 // the command must run as root
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
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		// Already explained: the result says so.
		return ee.code
	}
	code := exitCode(err)
	if wantsJSON(cmd, args) {
		printJSON(stdout, jsonError{Error: err.Error(), ExitCode: code})
		return code
	}
	fmt.Fprintln(stderr, "sentry:", err)
	if ctx := errorContext(err); ctx != "" {
		fmt.Fprintln(stderr, ctx)
	}
	if code == exitUsage {
		path := root.CommandPath()
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
	}
	return code
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, config.ErrInvalid):
		return exitConfig
	case errors.Is(err, errNeedRoot), errors.Is(err, agent.ErrNeedRoot):
		return exitNeedsRoot
	}
	return exitFailure
}

// jsonError is how an error is printed with --json.
type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// wantsJSON says whether the command line asked for --json: the flag as
// parsed, or, when parsing stopped early (an unknown command or flag), as
// written before any "--".
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd != nil {
		if f := cmd.Flags().Lookup("json"); f != nil && f.Changed {
			return f.Value.String() == "true"
		}
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" {
			return true
		}
		if v, ok := strings.CutPrefix(a, "--json="); ok {
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	return false
}

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

// exitError carries an exit code that was already explained (by the
// result printed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
