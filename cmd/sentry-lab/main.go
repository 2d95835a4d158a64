// Command sentry-lab runs the two-node lab: two real Debian nodes on this
// machine (network namespaces and systemd-nspawn), with the sentry binary
// installed in both. It is a development and test tool, apart from the
// sentry binary an operator runs on a server. See docs/lab.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

// Exit codes, the same as sentry's (sentry-lab reads no configuration
// file, so it has no 3), documented in each command's help.
const (
	exitOK        = 0
	exitFailure   = 1 // the command failed
	exitUsage     = 2 // bad flags or arguments
	exitNeedsRoot = 4 // the lab needs root
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
		// Already explained: the command run in a node printed its own
		// output.
		return ee.code
	}
	code := exitCode(err)
	if wantsJSON(cmd, args) {
		printJSON(stdout, jsonError{Error: err.Error(), ExitCode: code})
		return code
	}
	fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
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
	case errors.Is(err, lab.ErrNeedRoot):
		return exitNeedsRoot
	}
	return exitFailure
}

// jsonError is how an error is printed with --json.
type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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

// usageError marks an error as the caller's (bad flag or argument).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// exitError carries an exit code that was already explained (by a command
// run inside a lab node).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
