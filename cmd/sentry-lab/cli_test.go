package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
)

// cliEnv makes the test binary run the CLI instead of the tests (TestMain),
// so that a test can run the real command line as another user.
const cliEnv = "SENTRY_LAB_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// cliFixture is a temporary folder for the lab's folders and the files the
// command lines of the tests name. Nothing outside it is read or written.
type cliFixture struct {
	dir string
}

func newCLIFixture(t *testing.T) *cliFixture {
	t.Helper()
	f := &cliFixture{dir: t.TempDir()}
	if err := os.WriteFile(f.path("$DIR/file"), []byte("a file, not a folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// path expands the fixture's names in s.
func (f *cliFixture) path(s string) string {
	return strings.ReplaceAll(s, "$DIR", f.dir)
}

// args is a command line with the fixture's names expanded, after flags
// that keep the lab in the fixture: its folders, and a sentry binary that
// does not exist, so that no command that boots a node gets that far (a
// later flag wins).
func (f *cliFixture) args(args []string) []string {
	out := []string{"--name=t", "--state-dir=" + f.path("$DIR/lab"), "--cache-dir=" + f.path("$DIR/cache"), "--sentry=" + f.path("$DIR/none/sentry")}
	for _, a := range args {
		out = append(out, f.path(a))
	}
	return out
}

// cliResult is what a command line did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// run runs the command tree in this process.
func (f *cliFixture) run(stdin io.Reader, args ...string) cliResult {
	var out, errb bytes.Buffer
	code := execute(context.Background(), f.args(args), stdin, &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

// firstLine is the first line of s, with the fixture's folder as $DIR.
func (f *cliFixture) firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, f.dir, "$DIR")
}

// cliCase is one error path of one command: its exit code and the first
// line it prints: of stderr, or with --json the error of the JSON object
// on stdout (and nothing on stderr). A first line ending in "..." is a
// prefix.
type cliCase struct {
	args  []string
	code  int
	first string
}

func (c cliCase) String() string { return "sentry-lab " + strings.Join(c.args, " ") }

// check compares r with the case.
func (f *cliFixture) check(t *testing.T, c cliCase, r cliResult) {
	t.Helper()
	var got string
	if wantsJSON(nil, c.args) {
		var je jsonError
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&je); err != nil || dec.More() {
			t.Errorf("%s: stdout is not one JSON error (%v):\n%s", c, err, r.stdout)
			return
		}
		if je.ExitCode != r.code {
			t.Errorf("%s: exit_code %d in the JSON, exit code %d", c, je.ExitCode, r.code)
		}
		if r.stderr != "" {
			t.Errorf("%s: with --json, stderr is not empty:\n%s", c, r.stderr)
		}
		got = f.firstLine(je.Error)
	} else {
		got = f.firstLine(r.stderr)
	}
	match := got == c.first
	if p, ok := strings.CutSuffix(c.first, "..."); ok {
		match = strings.HasPrefix(got, p)
	}
	if r.code != c.code || !match {
		t.Errorf("%s:\n  exit %d, first line %q\n  want %d, %q\nstdout:\n%s\nstderr:\n%s", c, r.code, got, c.code, c.first, r.stdout, r.stderr)
	}
}

// noSentry is the error of a command that would boot a node, in the
// fixture (its --sentry does not exist).
const noSentry = "sentry-lab: the sentry binary to install into the nodes: stat $DIR/none/sentry: no such file or directory (make build puts it beside sentry-lab; or pass --sentry PATH)"

// TestCLIErrors pins, for every command, the exit code and the first line
// of each error path that can be reached without touching a lab: unknown
// commands and flags, missing and extra arguments, no sentry binary to
// install, and the same with --json. As root the lab's commands work on
// the host, so no case gets further; those that need another user are in
// TestCLINotRoot.
func TestCLIErrors(t *testing.T) {
	f := newCLIFixture(t)
	cases := []cliCase{
		// The command line itself.
		{[]string{}, 2, "sentry-lab: no command given: down, exec, logs, move, pair, status, swap, up"},
		{[]string{"nosuch"}, 2, `sentry-lab: unknown command "nosuch" for "sentry-lab"`},
		{[]string{"stauts"}, 2, `sentry-lab: unknown command "stauts" for "sentry-lab" (did you mean "status"?)`},
		{[]string{"--nosuch"}, 2, "sentry-lab: unknown flag: --nosuch"},
		{[]string{"nosuch", "--json"}, 2, `unknown command "nosuch" for "sentry-lab"`},
		{[]string{"--boot-timeout", "soon", "up"}, 2, `sentry-lab: invalid argument "soon" for "--boot-timeout" flag: time: invalid duration "soon"`},
		{[]string{"help", "nosuch"}, 2, `sentry-lab: no help topic "nosuch" (see 'sentry-lab --help')`},
		{[]string{"help", "up", "extra"}, 2, `sentry-lab: no help topic "up extra" (see 'sentry-lab --help')`},
		{[]string{"man", "extra"}, 2, `sentry-lab: unknown command "extra" for "sentry-lab man"`},
		{[]string{"man", "--dir", "$DIR/file/man"}, 1, "sentry-lab: mkdir $DIR/file: not a directory"},

		{[]string{"up", "extra"}, 2, `sentry-lab: unknown command "extra" for "sentry-lab up"`},
		{[]string{"up", "--boot-timeout", "soon"}, 2, `sentry-lab: invalid argument "soon" for "--boot-timeout" flag: time: invalid duration "soon"`},
		{[]string{"up", "--keep-disks=maybe"}, 2, `sentry-lab: invalid argument "maybe" for "--keep-disks" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"up"}, 1, noSentry},
		{[]string{"up", "--sentry", "$DIR"}, 1, "sentry-lab: the sentry binary to install into the nodes: $DIR is not a file (make build puts it beside sentry-lab; or pass --sentry PATH)"},
		{[]string{"down", "extra"}, 2, `sentry-lab: unknown command "extra" for "sentry-lab down"`},
		{[]string{"status", "extra"}, 2, `sentry-lab: unknown command "extra" for "sentry-lab status"`},
		{[]string{"status", "--json", "extra"}, 2, `unknown command "extra" for "sentry-lab status"`},
		{[]string{"exec"}, 2, "sentry-lab: exec needs a node and a command: sentry-lab exec P -- systemctl status"},
		{[]string{"exec", "P"}, 2, "sentry-lab: exec needs a node and a command: sentry-lab exec P -- systemctl status"},
		{[]string{"swap", "extra"}, 2, `sentry-lab: unknown command "extra" for "sentry-lab swap"`},
		{[]string{"swap"}, 1, noSentry},
		{[]string{"logs"}, 2, "sentry-lab: accepts 1 arg(s), received 0"},
		{[]string{"logs", "P", "S"}, 2, "sentry-lab: accepts 1 arg(s), received 2"},
		{[]string{"pair", "extra"}, 2, `sentry-lab: unknown command "extra" for "sentry-lab pair"`},
		{[]string{"move", "P"}, 2, "sentry-lab: accepts 2 arg(s), received 1"},
		{[]string{"move", "P", "c"}, 1, noSentry},
	}
	root := newRootCommand()
	covered := map[string]bool{}
	for _, c := range cases {
		r := f.run(strings.NewReader(""), c.args...)
		f.check(t, c, r)
		// The code is one the command's help lists.
		cmd, _, err := root.Find(f.args(c.args))
		if err != nil || cmd == nil {
			cmd = root
		}
		covered[cmd.CommandPath()] = true
		if !strings.Contains(cmd.Annotations[exitCodesKey], fmt.Sprintf("  %d  ", r.code)) {
			t.Errorf("%s: exit %d is not in the help of %q:\n%s", c, r.code, cmd.CommandPath(), cmd.Annotations[exitCodesKey])
		}
		if c.code == exitUsage && !wantsJSON(nil, c.args) {
			// A usage error says where the help is, on its second line.
			lines := strings.Split(r.stderr, "\n")
			if want := fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath()); len(lines) < 2 || lines[1] != want {
				t.Errorf("%s: second line of stderr %q, want %q", c, lines[1:], want)
			}
		}
	}
	// Every command has its error paths in the table.
	walk(root, func(c *cobra.Command) {
		if !covered[c.CommandPath()] {
			t.Errorf("no error path of %q in the table", c.CommandPath())
		}
	})
}

// walk calls fn for cmd and every command under it.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		walk(c, fn)
	}
}

// TestCLIEveryCommand: every command refuses an unknown flag with exit
// code 2 (also with --json) and has its exit codes in its help; the root
// refuses a command it lacks.
func TestCLIEveryCommand(t *testing.T) {
	f := newCLIFixture(t)
	walk(newRootCommand(), func(c *cobra.Command) {
		path := strings.Fields(c.CommandPath())[1:]
		if !strings.Contains(c.Annotations[exitCodesKey], "  2  ") {
			t.Errorf("%q: no exit codes in its help: %q", c.CommandPath(), c.Annotations[exitCodesKey])
		}
		args := append(append([]string{}, path...), "--no-such-flag")
		f.check(t, cliCase{args: args, code: 2, first: "sentry-lab: unknown flag: --no-such-flag"}, f.run(strings.NewReader(""), args...))
		args = append(args, "--json")
		f.check(t, cliCase{args: args, code: 2, first: "unknown flag: --no-such-flag"}, f.run(strings.NewReader(""), args...))
		if c.Annotations[groupKey] == "" {
			return
		}
		args = append(append([]string{}, path...), "no-such-command")
		f.check(t, cliCase{args: args, code: 2, first: fmt.Sprintf("sentry-lab: unknown command %q for %q", "no-such-command", c.CommandPath())},
			f.run(strings.NewReader(""), args...))
	})
}

// TestCLIHelp: --help exits 0, lists every lab command and shows the
// command's exit codes.
func TestCLIHelp(t *testing.T) {
	f := newCLIFixture(t)
	r := f.run(strings.NewReader(""), "--help")
	if r.code != 0 {
		t.Fatalf("--help: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"  up ", "  down ", "  status ", "  exec ", "  swap ", "  logs ", "  pair ", "  move ",
		"--sentry string", "\nExit codes:\n  0  success\n", "  4  " + labRoot} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("sentry-lab --help lacks %q:\n%s", want, r.stdout)
		}
	}
	for args, want := range map[string]string{
		"up --help":     "--keep-disks",
		"exec --help":   "  1  the exit code of the command run in the node; 1 when it could not be run",
		"pair --help":   `--cluster string   cluster name (default "office")`,
		"status --help": "  4  " + labRoot,
		"help move":     "  4  " + labRoot,
		"help":          "  4  " + labRoot,
	} {
		r := f.run(strings.NewReader(""), strings.Fields(args)...)
		if r.code != 0 || !strings.Contains(r.stdout, "\nExit codes:\n") || !strings.Contains(r.stdout, want) {
			t.Errorf("sentry-lab %s: exit %d, no %q:\n%s%s", args, r.code, want, r.stdout, r.stderr)
		}
	}
}

// TestCLINotRoot runs the CLI as a user other than root (this test binary
// runs as nobody when the test runs as root): every command that works on
// the lab is exit code 4.
func TestCLINotRoot(t *testing.T) {
	f := newCLIFixture(t)
	uid := os.Getuid()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		uid = 65534
		cred = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
		// The other user reaches the fixture's files (its folder and
		// the one testing made for this test are root's, mode 0700).
		for _, d := range []string{filepath.Dir(f.dir), f.dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The test binary, where the other user can run it; it is also the
	// "sentry binary" of the commands that check for one.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := f.path("$DIR/sentry-lab.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	runAs := func(args ...string) cliResult {
		t.Helper()
		cmd := exec.Command(bin, f.args(args)...)
		cmd.Env = append(os.Environ(), cliEnv+"=1")
		cmd.Dir = f.dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run %v as uid %d: %v", args, uid, err)
		}
		return cliResult{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
	}
	const needRoot = "sentry-lab: the lab needs root (namespaces, mounts, systemd-nspawn)"
	for _, c := range []cliCase{
		{[]string{"status"}, 4, needRoot},
		{[]string{"status", "--json"}, 4, strings.TrimPrefix(needRoot, "sentry-lab: ")},
		{[]string{"down"}, 4, needRoot},
		{[]string{"exec", "P", "--", "true"}, 4, needRoot},
		{[]string{"pair"}, 4, needRoot},
		{[]string{"up", "--sentry", bin}, 4, needRoot},
		{[]string{"swap", "--sentry", bin}, 4, needRoot},
		{[]string{"move", "P", "c", "--sentry", bin}, 4, needRoot},
		{[]string{"move", "P", "off"}, 4, needRoot},
	} {
		f.check(t, c, runAs(c.args...))
	}
}
