package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// ownUsage is a binary's own usage error type, as sentry's usageError.
type ownUsage struct{ error }

func (ownUsage) BadUsage() {}

// tree is a small command tree with the conventions applied.
func tree(list bool) *cobra.Command {
	root := &cobra.Command{Use: "tool", SilenceUsage: true, SilenceErrors: true, PersistentPreRunE: CheckFlags}
	root.SetFlagErrorFunc(FlagError)
	root.CompletionOptions.DisableDefaultCmd = true
	grp := &cobra.Command{Use: "grp", Short: "a group"}
	grp.AddCommand(&cobra.Command{Use: "leaf", Short: "a leaf", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }})
	fail := ExitCodes{Fail: "it failed", Root: "not root"}.Set(&cobra.Command{Use: "fail", Short: "fails", Args: NoArgs,
		RunE: func(*cobra.Command, []string) error { return errors.New("boom") }})
	fail.Flags().Bool("json", false, "JSON")
	exit := &cobra.Command{Use: "exit", Args: ExactArgs(1), RunE: func(_ *cobra.Command, a []string) error {
		return fmt.Errorf("wrapped: %w", ExitError{Code: 7})
	}}
	own := &cobra.Command{Use: "own", RunE: func(*cobra.Command, []string) error { return ownUsage{errors.New("bad value")} }}
	root.AddCommand(grp, fail, exit, own, NewManCommand(root, "Write man pages"))
	root.SetHelpCommand(NewHelpCommand(root, "help [COMMAND]..."))
	root.InitDefaultHelpCmd()
	root.SetUsageTemplate(UsageTemplate)
	Strict(root, StrictOptions{ExitCodes: "  0  fine", ListCommands: list})
	return root
}

func TestExecute(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		list   bool
		code   int
		stdout string
		stderr string
	}{
		{nil, false, 2, "", "tool: no command given\nRun 'tool --help' for usage.\n"},
		{nil, true, 2, "", "tool: no command given: exit, fail, grp, own\nRun 'tool --help' for usage.\n"},
		{[]string{"grp"}, false, 2, "", "tool: grp needs a subcommand: leaf\nRun 'tool grp --help' for usage.\n"},
		{[]string{"grp", "lef"}, false, 2, "", "tool: unknown command \"lef\" for \"tool grp\" (did you mean \"leaf\"?)\nRun 'tool grp --help' for usage.\n"},
		{[]string{"grp", "leaf", "x"}, false, 2, "", "tool: unknown command \"x\" for \"tool grp leaf\"\nRun 'tool grp leaf --help' for usage.\n"},
		{[]string{"nosuch", "--json"}, false, 2, "{\n  \"error\": \"unknown command \\\"nosuch\\\" for \\\"tool\\\"\",\n  \"exit_code\": 2\n}\n", ""},
		{[]string{"fail", "--nosuch"}, false, 2, "", "tool: unknown flag: --nosuch\nRun 'tool fail --help' for usage.\n"},
		{[]string{"fail"}, false, 1, "", "tool: boom\n"},
		{[]string{"fail", "--json"}, false, 1, "{\n  \"error\": \"boom\",\n  \"exit_code\": 1\n}\n", ""},
		{[]string{"exit", "a"}, false, 7, "", ""},
		{[]string{"exit"}, false, 2, "", "tool: accepts 1 arg(s), received 0\nRun 'tool exit --help' for usage.\n"},
		{[]string{"own"}, false, 2, "", "tool: bad value\nRun 'tool own --help' for usage.\n"},
		{[]string{"help", "nosuch"}, false, 2, "", "tool: no help topic \"nosuch\" (see 'tool --help')\nRun 'tool help --help' for usage.\n"},
	} {
		var out, errb bytes.Buffer
		code := Program{}.Execute(context.Background(), tree(tc.list), tc.args, nil, &out, &errb)
		if code != tc.code || out.String() != tc.stdout || errb.String() != tc.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q\n\twant %d, %q, %q", tc.args, code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestProgramHooks(t *testing.T) {
	p := Program{
		ExitCode: func(err error) int { return 5 },
		Context:  func(err error) string { return "  line 3: here" },
	}
	var out, errb bytes.Buffer
	if code := p.Execute(context.Background(), tree(false), []string{"fail"}, nil, &out, &errb); code != 5 {
		t.Errorf("exit %d", code)
	}
	if errb.String() != "tool: boom\n  line 3: here\n" {
		t.Errorf("stderr %q", errb.String())
	}
}

func TestHelpShowsExitCodes(t *testing.T) {
	var out bytes.Buffer
	code := Program{}.Execute(context.Background(), tree(false), []string{"help", "fail"}, nil, &out, &out)
	want := "Exit codes:\n  0  success\n  1  it failed\n  2  bad flags or arguments\n  4  not root\n"
	if code != 0 || !strings.Contains(out.String(), want) {
		t.Errorf("exit %d, help:\n%s", code, out.String())
	}
	out.Reset()
	Program{}.Execute(context.Background(), tree(false), []string{"grp", "--help"}, nil, &out, &out)
	if !strings.Contains(out.String(), "Exit codes:\n"+GroupExitCodes) || strings.Contains(out.String(), "tool grp [flags]") {
		t.Errorf("group help:\n%s", out.String())
	}
}

func TestExitCodesString(t *testing.T) {
	for _, tc := range []struct {
		e    ExitCodes
		want string
	}{
		{ExitCodes{}, "  0  success\n  1  the command failed (the message says why)\n  2  bad flags or arguments"},
		{ExitCodes{Fail: "drift", Invalid: "bad config", Root: "not root", Confirm: true},
			"  0  success\n  1  drift\n  2  bad flags or arguments; no terminal to ask for confirmation on, and no --yes\n  3  bad config\n  4  not root"},
		{ExitCodes{Group: true, Fail: "ignored"}, GroupExitCodes},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%+v:\n%s\nwant\n%s", tc.e, got, tc.want)
		}
	}
}

func TestWantsJSON(t *testing.T) {
	for args, want := range map[string]bool{
		"x --json": true, "x --json=true": true, "x --json=false": false, "x --json=nope": false,
		"x -- --json": false, "x": false,
	} {
		if got := WantsJSON(nil, strings.Fields(args)); got != want {
			t.Errorf("WantsJSON(%q) = %v", args, got)
		}
	}
}

func TestIsUsage(t *testing.T) {
	if !IsUsage(fmt.Errorf("x: %w", Usagef("bad %d", 1))) || !IsUsage(ownUsage{errors.New("y")}) || IsUsage(errors.New("z")) {
		t.Error("IsUsage")
	}
	var je JSONError
	b, _ := json.Marshal(JSONError{Error: "e", ExitCode: 2})
	if json.Unmarshal(b, &je); je.ExitCode != 2 || string(b) != `{"error":"e","exit_code":2}` {
		t.Errorf("JSON error %s", b)
	}
}

func TestWriteManPages(t *testing.T) {
	dir := t.TempDir()
	n, err := WriteManPages(tree(false), dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	if n != len(files) || n < 6 {
		t.Fatalf("%d pages reported, %d written: %v", n, len(files), files)
	}
	if _, err := os.Stat(filepath.Join(dir, "tool-man.1")); err == nil {
		t.Error("a page for the hidden man command")
	}
	b, err := os.ReadFile(filepath.Join(dir, "tool-fail.1"))
	if err != nil || !strings.Contains(string(b), "it failed") || !strings.Contains(string(b), "not root") {
		t.Errorf("tool-fail.1 without its exit codes (%v):\n%s", err, b)
	}
}
