// Package cli holds the command-line conventions that sentry and
// sentry-lab share: the exit codes and how an error is printed (Program),
// strict argument checking (a wrong command, flag or number of arguments
// is a usage error, exit code 2), each command's exit codes in its help
// and man page, the usage template, the help command and the man-page
// writer.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every command of both binaries (each command's
// help says what they mean for it).
const (
	ExitOK        = 0
	ExitFailure   = 1 // the command failed
	ExitUsage     = 2 // bad flags or arguments
	ExitConfig    = 3 // the configuration file (or a module manifest) is invalid
	ExitNeedsRoot = 4 // the command must run as root
	ExitUnknown   = 5 // sentry ready: the verdict is UNKNOWN (evidence missing or too old)
)

// UsageError marks an error as the caller's (bad flag or argument): exit
// code 2, with a pointer to the help. A binary may have a usage error type
// of its own: one with a BadUsage method counts as one too.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// BadUsage marks UsageError as a usage error (IsUsage).
func (UsageError) BadUsage() {}

// Usage marks err as a usage error.
func Usage(err error) error { return UsageError{Err: err} }

// Usagef is a usage error with a formatted message.
func Usagef(format string, args ...any) error { return UsageError{Err: fmt.Errorf(format, args...)} }

// IsUsage says whether err is (or wraps) a usage error: one with a
// BadUsage method.
func IsUsage(err error) bool {
	var u interface{ BadUsage() }
	return errors.As(err, &u)
}

// ExitError carries an exit code whose reason was already printed (a
// result that says so, or the output of a command run in a lab node). A
// binary's own such type counts too if it has an ExplainedExit method.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExplainedExit is the exit code.
func (e ExitError) ExplainedExit() int { return e.Code }

// JSONError is how an error is printed with --json.
type JSONError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// Program is what a binary adds to the shared conventions.
type Program struct {
	// ExitCode maps an error to its exit code; nil gives 2 for a
	// UsageError and 1 for anything else.
	ExitCode func(error) int
	// Context returns lines printed after an error's message (the lines
	// around a syntax error, say), or ""; nil for none.
	Context func(error) string
}

// Execute runs root with the command line args and returns the exit code.
// An error is printed to stderr as "NAME: ..." (a usage error with a
// pointer to the help on a second line), or with --json to stdout as
// {"error": "...", "exit_code": N}. An ExitError prints nothing more.
func (p Program) Execute(ctx context.Context, root *cobra.Command, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ee interface{ ExplainedExit() int }
	if errors.As(err, &ee) {
		return ee.ExplainedExit()
	}
	code := p.exitCode(err)
	if WantsJSON(cmd, args) {
		PrintJSON(stdout, JSONError{Error: err.Error(), ExitCode: code})
		return code
	}
	fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
	if p.Context != nil {
		if c := p.Context(err); c != "" {
			fmt.Fprintln(stderr, c)
		}
	}
	if code == ExitUsage {
		path := root.CommandPath()
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
	}
	return code
}

func (p Program) exitCode(err error) int {
	if p.ExitCode != nil {
		return p.ExitCode(err)
	}
	if IsUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// PrintJSON writes v as indented JSON.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WantsJSON says whether the command line asked for --json: the flag as
// parsed, or, when parsing stopped early (an unknown command or flag), as
// written before any "--".
func WantsJSON(cmd *cobra.Command, args []string) bool {
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
