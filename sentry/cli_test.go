package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
const cliEnv = "SENTRY_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// cliFixture is a temporary folder with the files the command lines of
// the tests name: a configuration whose agent socket and state folder are
// in it (no agent listens there), bad configuration files, and module
// roots. Nothing outside it is read or written.
type cliFixture struct {
	dir string
}

func newCLIFixture(t *testing.T) *cliFixture {
	t.Helper()
	f := &cliFixture{dir: t.TempDir()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"state", "run", "root", "badroot/etc/sentry"} {
		must(os.MkdirAll(filepath.Join(f.dir, d), 0o755))
	}
	must(os.WriteFile(f.path("$CFG"), fmt.Appendf(nil, "[node]\nname = \"node-t\"\nstate_dir = %q\n[agent]\nsocket = %q\n",
		f.path("$DIR/state"), f.path("$DIR/run/agent.sock")), 0o644))
	for from, to := range map[string]string{
		"bad-unknown-key.toml": "$BAD", "bad-syntax.toml": "$SYNTAX",
		"bad-modules.toml": "$BADROOT/etc/sentry/modules.toml", "bad-manifest.toml": "$DIR/bad-manifest.toml",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", from))
		must(err)
		must(os.WriteFile(f.path(to), b, 0o644))
	}
	must(os.WriteFile(f.path("$DIR/file"), []byte("a file, not a folder\n"), 0o644))
	return f
}

// path expands the fixture's names in s.
func (f *cliFixture) path(s string) string {
	return strings.NewReplacer("$CFG", f.dir+"/sentry.toml", "$BADROOT", f.dir+"/badroot", "$BAD", f.dir+"/bad.toml",
		"$SYNTAX", f.dir+"/syntax.toml", "$ROOT", f.dir+"/root", "$DIR", f.dir).Replace(s)
}

// args is a command line with the fixture's names expanded, after
// --config=$CFG: no command line of the tests reads /etc/sentry (a later
// --config wins).
func (f *cliFixture) args(args []string) []string {
	out := []string{"--config=" + f.path("$CFG")}
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

// run runs the command tree in this process, with stdin (a terminal or
// not).
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
// on stdout (and nothing on stderr), or with stdout set the first line of
// stdout (the result explains the exit code; stderr stays empty). A first
// line ending in "..." is a prefix.
type cliCase struct {
	args   []string
	code   int
	first  string
	stdout bool
}

func (c cliCase) String() string { return "sentry " + strings.Join(c.args, " ") }

// check compares r with the case.
func (f *cliFixture) check(t *testing.T, c cliCase, r cliResult) {
	t.Helper()
	isJSON := wantsJSON(nil, c.args)
	var got string
	switch {
	case isJSON && !c.stdout:
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
	case c.stdout:
		if r.stderr != "" {
			t.Errorf("%s: stderr is not empty:\n%s", c, r.stderr)
		}
		got = f.firstLine(r.stdout)
	default:
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

// notRunning is the message of every command that asks the agent, in the
// fixture (nothing listens on its socket).
const notRunning = "sentry: the sentry agent is not running (systemctl start sentry-agent): $DIR/run/agent.sock: connect: no such file or directory"

// TestCLIErrors pins, for every command, the exit code and the first line
// of each error path that can be reached without root and without an
// agent: unknown commands and flags, missing and extra arguments, missing
// required flags, groups without a subcommand, bad configuration files,
// the agent not running, a confirmation that cannot be asked, flags that
// exclude each other, and the same with --json. Paths that need another
// user are in TestCLINotRoot, those that need a terminal in
// TestCLIConfirm.
func TestCLIErrors(t *testing.T) {
	f := newCLIFixture(t)
	// bootcheck explain and adopt read this boot's decision in
	// bootcheck.RunDir: the fixture's.
	bootFixture(t, f.dir)
	notRunningJSON := strings.TrimPrefix(notRunning, "sentry: ")
	const badModules = `sentry: $DIR/badroot/etc/sentry/modules.toml:4:1: key "modules.web-nginx.colour": unknown key (the file has schema_version, and per module version, pinned, disabled, history)`
	const badKey = `sentry: $DIR/bad.toml:5:1: key "agent.lisen": unknown key (did you mean "agent.listen"?)`
	const badSyntax = `sentry: $DIR/syntax.toml:3:15: key "node.name": strings cannot contain newlines`
	cases := []cliCase{
		// The command line itself.
		{[]string{}, 2, "sentry: no command given", false},
		{[]string{"nosuch"}, 2, `sentry: unknown command "nosuch" for "sentry"`, false},
		{[]string{"stauts"}, 2, `sentry: unknown command "stauts" for "sentry" (did you mean "status"?)`, false},
		{[]string{"--nosuch"}, 2, "sentry: unknown flag: --nosuch", false},
		{[]string{"nosuch", "--json"}, 2, `unknown command "nosuch" for "sentry"`, false},
		{[]string{"help", "nosuch"}, 2, `sentry: no help topic "nosuch" (see 'sentry --help')`, false},
		{[]string{"help", "config", "nosuch"}, 2, `sentry: no help topic "config nosuch" (see 'sentry --help')`, false},
		{[]string{"completion"}, 2, "sentry: completion needs a subcommand: bash, fish, powershell, zsh", false},
		{[]string{"completion", "nosuch"}, 2, `sentry: unknown command "nosuch" for "sentry completion"`, false},
		{[]string{"completion", "bash", "extra"}, 2, `sentry: unknown command "extra" for "sentry completion bash"`, false},
		{[]string{"completion", "zsh", "extra"}, 2, `sentry: unknown command "extra" for "sentry completion zsh"`, false},
		{[]string{"completion", "fish", "extra"}, 2, `sentry: unknown command "extra" for "sentry completion fish"`, false},
		{[]string{"completion", "powershell", "extra"}, 2, `sentry: unknown command "extra" for "sentry completion powershell"`, false},
		{[]string{"man", "extra"}, 2, `sentry: unknown command "extra" for "sentry man"`, false},
		{[]string{"man", "--dir", "$DIR/file/man"}, 1, "sentry: mkdir $DIR/file: not a directory", false},
		{[]string{"bench"}, 2, "sentry: bench needs a subcommand: idle", false},
		{[]string{"bench", "idle", "extra"}, 2, `sentry: unknown command "extra" for "sentry bench idle"`, false},
		{[]string{"bench", "idle", "--duration", "soon"}, 2, `sentry: invalid argument "soon" for "--duration" flag: time: invalid duration "soon"`, false},

		{[]string{"version", "extra"}, 2, `sentry: unknown command "extra" for "sentry version"`, false},
		{[]string{"version", "--json", "extra"}, 2, `unknown command "extra" for "sentry version"`, false},

		// Cluster.
		{[]string{"init"}, 2, `sentry: required flag(s) "cluster" not set`, false},
		{[]string{"init", "--json"}, 2, `required flag(s) "cluster" not set`, false},
		{[]string{"init", "--cluster", "Office"}, 2, `sentry: --cluster "Office": use lower-case letters, digits and '-'`, false},
		{[]string{"init", "--cluster", "office", "--token-ttl", "soon"}, 2, `sentry: invalid argument "soon" for "--token-ttl" flag: time: invalid duration "soon"`, false},
		{[]string{"init", "--cluster", "office", "extra"}, 2, `sentry: unknown command "extra" for "sentry init"`, false},
		{[]string{"init", "--cluster", "office"}, 1, notRunning, false},
		{[]string{"init", "--cluster", "office", "--json"}, 1, notRunningJSON, false},
		{[]string{"init", "--cluster", "office", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"join"}, 2, "sentry: accepts 2 arg(s), received 0", false},
		{[]string{"join", "TOKEN"}, 2, "sentry: accepts 2 arg(s), received 1", false},
		{[]string{"join", "TOKEN", "192.0.2.10:7443"}, 1, notRunning, false},
		{[]string{"join", "TOKEN", "192.0.2.10:7443", "--config", "$SYNTAX"}, 3, badSyntax, false},
		{[]string{"join", "-", "192.0.2.10:7443"}, 2, "sentry: join -: no token on standard input (EOF)", false},
		{[]string{"token", "extra"}, 2, `sentry: unknown command "extra" for "sentry token"`, false},
		{[]string{"token", "--ttl", "soon"}, 2, `sentry: invalid argument "soon" for "--ttl" flag: time: invalid duration "soon"`, false},
		{[]string{"token"}, 1, notRunning, false},
		{[]string{"token", "--json"}, 1, notRunningJSON, false},
		{[]string{"status", "extra"}, 2, `sentry: unknown command "extra" for "sentry status"`, false},
		{[]string{"status"}, 1, notRunning, false},
		{[]string{"status", "--json"}, 1, notRunningJSON, false},
		{[]string{"status", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"status", "--json", "--config", "$BAD"}, 3, strings.TrimPrefix(badKey, "sentry: "), false},
		{[]string{"events", "extra"}, 2, `sentry: unknown command "extra" for "sentry events"`, false},
		{[]string{"events", "-n", "many"}, 2, `sentry: invalid argument "many" for "-n, --number" flag: strconv.ParseInt: parsing "many": invalid syntax`, false},
		{[]string{"events"}, 1, notRunning, false},
		{[]string{"events", "--json", "--kind", "failover"}, 1, notRunningJSON, false},
		{[]string{"report", "extra"}, 2, `sentry: unknown command "extra" for "sentry report"`, false},
		{[]string{"report", "--format", "pdf"}, 2, `sentry: --format "pdf": want text, markdown, html or json`, false},
		{[]string{"report", "--week", "2026-49"}, 2, `sentry: --week: week "2026-49" is not written as 2026-W49 (or last, or current)`, false},
		{[]string{"report", "--week", "2026-W54", "--mail"}, 2, `sentry: --week: week "2026-W54" does not exist (2026 has 53 ISO weeks) (or last, or current)`, false},
		{[]string{"report", "--json", "--format", "html"}, 2, "--json and --format html: choose one", false},
		{[]string{"report", "--mail", "--out", "$DIR/r.txt"}, 2, "sentry: --mail keeps and mails the report: --out and --format are for showing it", false},
		{[]string{"report", "--from-peer", "--mail"}, 2, "sentry: --from-peer shows the peer's kept report: --mail keeps and mails this node's", false},
		{[]string{"report", "--from-peer", "--week", "2026-W54"}, 2, `sentry: --week: week "2026-W54" does not exist (2026 has 53 ISO weeks) (or last, or current)`, false},
		{[]string{"report", "--from-peer", "--format", "pdf"}, 2, `sentry: --format "pdf": want text, markdown, html or json`, false},
		{[]string{"report", "--from-peer"}, 1, notRunning, false},
		{[]string{"report", "--from-peer", "--json"}, 1, notRunningJSON, false},
		{[]string{"report", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"report"}, 1, notRunning, false},
		{[]string{"report", "--mail", "--json"}, 1, notRunningJSON, false},
		{[]string{"report", "list", "extra"}, 2, `sentry: unknown command "extra" for "sentry report list"`, false},
		{[]string{"report", "restore-test", "extra"}, 2, `sentry: unknown command "extra" for "sentry report restore-test"`, false},
		{[]string{"report", "restore-test"}, 1, notRunning, false},
		{[]string{"report", "restore-test", "--json"}, 1, notRunningJSON, false},
		{[]string{"report", "list"}, 1, notRunning, false},
		{[]string{"tui", "extra"}, 2, `sentry: unknown command "extra" for "sentry tui"`, false},
		{[]string{"tui", "--screen", "nosuch"}, 2, `sentry: --screen "nosuch": no such screen (overview, services, sync, packages, failover, modules, events, reports)`, false},
		{[]string{"tui", "--config", "$BAD"}, 3, badKey, false},
		// The agent down is no error: on a terminal the UI opens and says
		// so (TestTUIAgentDown); without one there is nothing to open.
		{[]string{"tui"}, 2, "sentry: tui needs a terminal on standard input and output (for scripts: sentry status --json, sentry ready --json)", false},
		{[]string{"agent", "extra"}, 2, `sentry: unknown command "extra" for "sentry agent"`, false},
		{[]string{"agent", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"agent", "unit", "extra"}, 2, `sentry: no unit "extra": sentry has sentry-agent.service, sentry-report.service, sentry-report.timer`, false},
		{[]string{"agent", "unit", "sentry-report.timer", "extra"}, 2, `sentry: accepts at most 1 arg(s), received 2`, false},

		// Configuration.
		{[]string{"config"}, 2, "sentry: config needs a subcommand: check, diff, drift, log, rollback, show", false},
		{[]string{"config", "nosuch"}, 2, `sentry: unknown command "nosuch" for "sentry config"`, false},
		{[]string{"config", "chek"}, 2, `sentry: unknown command "chek" for "sentry config" (did you mean "check"?)`, false},
		{[]string{"config", "--json"}, 2, "unknown flag: --json", false},
		{[]string{"config", "check", "extra"}, 2, `sentry: unknown command "extra" for "sentry config check"`, false},
		{[]string{"config", "check", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"config", "check", "--config", "$SYNTAX"}, 3, badSyntax, false},
		{[]string{"config", "check", "--config", "$BAD", "--json"}, 3, strings.TrimPrefix(badKey, "sentry: "), false},
		{[]string{"config", "check", "--config", "$DIR/none.toml"}, 1, "sentry: read configuration: open $DIR/none.toml: no such file or directory", false},
		{[]string{"config", "log", "extra"}, 2, `sentry: unknown command "extra" for "sentry config log"`, false},
		{[]string{"config", "log"}, 1, notRunning, false},
		{[]string{"config", "log", "--json"}, 1, notRunningJSON, false},
		{[]string{"config", "log", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"config", "show"}, 2, "sentry: accepts 1 arg(s), received 0", false},
		{[]string{"config", "show", "HEAD"}, 2, `sentry: want REV:/absolute/path, got "HEAD"`, false},
		{[]string{"config", "show", "HEAD:/etc/hosts"}, 1, notRunning, false},
		{[]string{"config", "show", "HEAD:/etc/hosts", "--json"}, 1, notRunningJSON, false},
		{[]string{"config", "show", "HEAD:/etc/hosts", "--node", "node-s"}, 1, notRunning, false},
		{[]string{"config", "diff", "HEAD", "HEAD~1"}, 2, "sentry: accepts at most 1 arg(s), received 2", false},
		{[]string{"config", "diff"}, 1, notRunning, false},
		{[]string{"config", "diff", "--json"}, 1, notRunningJSON, false},
		{[]string{"config", "diff", "--nodes", "--json"}, 1, notRunningJSON, false},
		{[]string{"config", "diff", "--config", "$SYNTAX"}, 3, badSyntax, false},
		{[]string{"config", "rollback"}, 2, "sentry: accepts 1 arg(s), received 0", false},
		{[]string{"config", "rollback", "HEAD~1"}, 2, "sentry: config rollback asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"config", "rollback", "HEAD~1", "--json"}, 2, "config rollback asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"config", "rollback", "HEAD~1", "--yes"}, 1, notRunning, false},
		{[]string{"config", "rollback", "HEAD~1", "--yes", "--json"}, 1, notRunningJSON, false},
		{[]string{"config", "rollback", "HEAD~1", "--yes", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"config", "drift", "extra"}, 2, `sentry: unknown command "extra" for "sentry config drift"`, false},
		{[]string{"config", "drift"}, 1, notRunning, false},
		{[]string{"config", "drift", "--json"}, 1, notRunningJSON, false},
		{[]string{"config", "drift", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"sync", "extra"}, 2, `sentry: unknown command "extra" for "sentry sync"`, false},
		{[]string{"sync"}, 1, notRunning, false},
		{[]string{"sync", "--json"}, 1, notRunningJSON, false},
		{[]string{"sync", "--force", "--config", "$BAD"}, 3, badKey, false},

		// Verification.
		{[]string{"verify", "extra"}, 2, `sentry: unknown command "extra" for "sentry verify"`, false},
		{[]string{"verify", "--node", "node-s", "--debug", "mail"}, 2, "sentry: --node and --debug given: choose one of --node, --debug and --kind", false},
		{[]string{"verify", "--kind", "disk", "--debug", "mail", "--json"}, 2, "--debug and --kind given: choose one of --node, --debug and --kind", false},
		{[]string{"verify", "--last"}, 2, "sentry: --last goes with --node only", false},
		{[]string{"verify", "--param", "path=/"}, 2, "sentry: --param goes with --kind only", false},
		{[]string{"verify", "--node", "node-s", "--log"}, 2, "sentry: --log goes with --kind only", false},
		{[]string{"verify", "--kind", "disk", "--service", "web"}, 2, "sentry: --service does not go with --kind or --debug", false},
		{[]string{"verify", "--kind", "nosuch"}, 2, `sentry: --kind "nosuch": known kinds are ...`, false},
		{[]string{"verify", "--kind", "disk", "--param", "path"}, 2, `sentry: --param "path": want KEY=VALUE`, false},
		{[]string{"verify", "--timeout", "soon"}, 2, `sentry: invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"`, false},
		{[]string{"verify", "--kind", "disk", "--param", "path=$DIR", "--param", "min_free_percent=101"}, 2, "sentry: --param min_free_percent: 101 is not a percentage (0 to 100)", false},
		{[]string{"verify", "--kind", "disk", "--param", "colour=red"}, 2, "sentry: --param colour: unknown parameter of the disk probe: it takes min_free_percent, path", false},
		{[]string{"verify", "--kind", "disk", "--param", "path=$DIR", "--param", "min_free_percent=100"}, 1, "disk FAILED: statfs: $DIR has ...", true},
		{[]string{"verify"}, 1, notRunning, false},
		{[]string{"verify", "--service", "mail", "--json"}, 1, notRunningJSON, false},
		{[]string{"verify", "--timeout", "5s"}, 1, notRunning, false},
		{[]string{"verify", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"verify", "--node", "node-s"}, 1, notRunning, false},
		{[]string{"verify", "--node", "node-s", "--last", "--json"}, 1, notRunningJSON, false},
		{[]string{"verify", "--debug", "mail"}, 1, notRunning, false},
		{[]string{"verifier"}, 2, "sentry: verifier needs a subcommand: setup", false},
		{[]string{"verifier", "setup", "extra"}, 2, `sentry: unknown command "extra" for "sentry verifier setup"`, false},
		{[]string{"verifier", "setup"}, 1, "sentry: the canary password comes from the cluster key, and $DIR/state/pki/cluster.agekey: open $DIR/state/pki/cluster.agekey: no such file or directory (pair the nodes first)", false},
		{[]string{"verifier", "setup", "--config", "$SYNTAX"}, 3, badSyntax, false},

		// Packages.
		{[]string{"drift", "extra"}, 2, `sentry: unknown command "extra" for "sentry drift"`, false},
		{[]string{"drift"}, 1, notRunning, false},
		{[]string{"drift", "--json"}, 1, notRunningJSON, false},
		{[]string{"drift", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"compat", "extra"}, 2, `sentry: unknown command "extra" for "sentry compat"`, false},
		{[]string{"compat"}, 1, notRunning, false},
		{[]string{"compat", "--json"}, 1, notRunningJSON, false},
		{[]string{"compat", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"parity"}, 2, "sentry: parity needs a subcommand: apply, plan", false},
		{[]string{"parity", "plan", "extra"}, 2, `sentry: unknown command "extra" for "sentry parity plan"`, false},
		{[]string{"parity", "plan"}, 1, notRunning, false},
		{[]string{"parity", "plan", "--json"}, 1, notRunningJSON, false},
		{[]string{"parity", "plan", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"parity", "apply", "extra"}, 2, `sentry: unknown command "extra" for "sentry parity apply"`, false},
		{[]string{"parity", "apply"}, 2, "sentry: parity apply asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"parity", "apply", "--json"}, 2, "parity apply asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"parity", "apply", "--dry-run", "--approve", "abc"}, 2, `sentry: --approve "abc": not a SHA-256 (64 hex digits)`, false},
		{[]string{"parity", "apply", "--dry-run"}, 1, notRunning, false},
		{[]string{"parity", "apply", "--yes"}, 1, notRunning, false},
		{[]string{"parity", "apply", "--yes", "--json"}, 1, notRunningJSON, false},
		{[]string{"parity", "apply", "--dry-run", "--config", "$BAD"}, 3, badKey, false},

		// Boot and failover.
		{[]string{"bootcheck"}, 2, "sentry: bootcheck needs a subcommand: adopt, explain, install, run", false},
		{[]string{"bootcheck", "nosuch"}, 2, `sentry: unknown command "nosuch" for "sentry bootcheck"`, false},
		{[]string{"bootcheck", "run", "extra"}, 2, `sentry: unknown command "extra" for "sentry bootcheck run"`, false},
		{[]string{"bootcheck", "run", "--budget", "0s"}, 2, "sentry: bootcheck run: --budget must be more than 0 (got 0s)", false},
		{[]string{"bootcheck", "run", "--budget", "0s", "--json"}, 2, "bootcheck run: --budget must be more than 0 (got 0s)", false},
		{[]string{"bootcheck", "explain", "extra"}, 2, `sentry: unknown command "extra" for "sentry bootcheck explain"`, false},
		{[]string{"bootcheck", "explain"}, 1, "sentry: no boot decision since this boot ($DIR/run/sentry/bootcheck.json is missing): is sentry-bootcheck.service installed? (sentry bootcheck install)", false},
		{[]string{"bootcheck", "explain", "--json"}, 1, "no boot decision since this boot ($DIR/run/sentry/bootcheck.json is missing): is sentry-bootcheck.service installed? (sentry bootcheck install)", false},
		{[]string{"bootcheck", "adopt", "extra"}, 2, `sentry: unknown command "extra" for "sentry bootcheck adopt"`, false},
		{[]string{"bootcheck", "adopt"}, 2, "sentry: bootcheck adopt asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"bootcheck", "adopt", "--yes"}, 1, "sentry: no boot decision to act on: open $DIR/run/sentry/bootcheck.json: no such file or directory", false},
		{[]string{"bootcheck", "adopt", "--yes", "--json"}, 1, "no boot decision to act on: open $DIR/run/sentry/bootcheck.json: no such file or directory", false},
		{[]string{"bootcheck", "install", "extra"}, 2, `sentry: unknown command "extra" for "sentry bootcheck install"`, false},
		{[]string{"bootcheck", "install", "--root", "$DIR/file"}, 1, "sentry: mkdir $DIR/file: not a directory", false},
		{[]string{"bootcheck", "install", "--root", "$DIR/file", "--json"}, 1, "mkdir $DIR/file: not a directory", false},
		{[]string{"ready", "extra"}, 2, `sentry: unknown command "extra" for "sentry ready"`, false},
		{[]string{"ready"}, 1, notRunning, false},
		{[]string{"ready", "--json"}, 1, notRunningJSON, false},
		{[]string{"ready", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"failover"}, 2, "sentry: failover needs a subcommand: history, plan, status", false},
		{[]string{"failover", "plan", "extra"}, 2, `sentry: unknown command "extra" for "sentry failover plan"`, false},
		{[]string{"failover", "plan", "--markdown", "--json"}, 2, "failover plan: --markdown and --json exclude each other", false},
		{[]string{"failover", "plan", "--markdown", "--json", "--yes"}, 2, "unknown flag: --yes", false},
		{[]string{"failover", "plan"}, 1, notRunning, false},
		{[]string{"failover", "plan", "--planned", "--json"}, 1, notRunningJSON, false},
		{[]string{"failover", "plan", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"failover", "status", "extra"}, 2, `sentry: unknown command "extra" for "sentry failover status"`, false},
		{[]string{"failover", "status"}, 1, notRunning, false},
		{[]string{"failover", "status", "--json"}, 1, notRunningJSON, false},
		{[]string{"failover", "status", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"failover", "history", "extra"}, 2, `sentry: unknown command "extra" for "sentry failover history"`, false},
		{[]string{"failover", "history"}, 1, notRunning, false},
		{[]string{"failover", "history", "--json"}, 1, notRunningJSON, false},
		{[]string{"failover", "history", "--config", "$BAD"}, 3, badKey, false},
		{[]string{"promote", "extra"}, 2, `sentry: unknown command "extra" for "sentry promote"`, false},
		{[]string{"promote"}, 2, "sentry: promote asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"promote", "--json"}, 2, "promote asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"promote", "--yes"}, 1, notRunning, false},
		{[]string{"promote", "--yes", "--json"}, 1, notRunningJSON, false},
		{[]string{"promote", "--yes", "--config", "$BAD"}, 3, badKey, false},

		// Modules.
		{[]string{"modules"}, 2, "sentry: modules needs a subcommand: approve, disable, enable, install, list, pin, remove, rollback, show, unpin, use", false},
		{[]string{"modules", "approve", "extra"}, 2, `sentry: unknown command "extra" for "sentry modules approve"`, false},
		{[]string{"modules", "approve"}, 2, "sentry: modules approve asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"modules", "approve", "--json"}, 2, "modules approve asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"modules", "approve", "--yes"}, 1, notRunning, false},
		{[]string{"modules", "approve", "--yes", "--json"}, 1, notRunningJSON, false},
		{[]string{"modules", "nosuch"}, 2, `sentry: unknown command "nosuch" for "sentry modules"`, false},
		{[]string{"modules", "list", "extra"}, 2, `sentry: unknown command "extra" for "sentry modules list"`, false},
		{[]string{"modules", "list", "--root", "$BADROOT"}, 3, badModules, false},
		{[]string{"modules", "list", "--root", "$BADROOT", "--json"}, 3, strings.TrimPrefix(badModules, "sentry: "), false},
		{[]string{"modules", "show"}, 2, "sentry: accepts 1 arg(s), received 0", false},
		{[]string{"modules", "show", "nosuch", "--root", "$ROOT"}, 1, "sentry: module state: no module nosuch", false},
		{[]string{"modules", "install"}, 2, "sentry: accepts 1 arg(s), received 0", false},
		{[]string{"modules", "install", "$DIR/none.toml", "--root", "$ROOT"}, 1, "sentry: read module manifest: open $DIR/none.toml: no such file or directory", false},
		{[]string{"modules", "install", "$DIR/bad-manifest.toml", "--root", "$ROOT"}, 3, `sentry: $DIR/bad-manifest.toml:6:1: key "colour": unknown key`, false},
		{[]string{"modules", "use"}, 2, "sentry: accepts 1 arg(s), received 0", false},
		{[]string{"modules", "use", "web-nginx", "--root", "$ROOT"}, 2, `sentry: "web-nginx" names no version: write NAME@VERSION`, false},
		{[]string{"modules", "use", "web-nginx@1.0.0", "--root", "$ROOT"}, 2, "sentry: modules use asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"modules", "use", "web-nginx@9.9.9", "--root", "$ROOT", "--yes"}, 1, "sentry: module state: module web-nginx has no version 9.9.9 (available: 1.0.0 (builtin)); install it first", false},
		{[]string{"modules", "use", "web-nginx@9.9.9", "--root", "$ROOT", "--yes", "--json"}, 1, "module state: module web-nginx has no version 9.9.9 (available: 1.0.0 (builtin)); install it first", false},
		{[]string{"modules", "rollback", "web-nginx@1.0.0"}, 2, "sentry: rollback takes a module name without a version", false},
		{[]string{"modules", "rollback", "web-nginx", "--root", "$ROOT"}, 2, "sentry: modules rollback asks for confirmation, and there is no terminal to ask on: pass --yes", false},
		{[]string{"modules", "rollback", "web-nginx", "--root", "$ROOT", "--yes"}, 1, "sentry: module state: module web-nginx has no previous version to roll back to", false},
		{[]string{"modules", "rollback", "web-nginx", "--root", "$BADROOT", "--yes"}, 3, badModules, false},
		{[]string{"modules", "pin", "nosuch", "--root", "$ROOT"}, 1, "sentry: module state: no module nosuch (see sentry modules list)", false},
		{[]string{"modules", "pin", "web-nginx@1.0.0", "--root", "$ROOT"}, 2, "sentry: pin takes a module name without a version", false},
		{[]string{"modules", "unpin"}, 2, "sentry: accepts 1 arg(s), received 0", false},
		{[]string{"modules", "unpin", "nosuch", "--root", "$ROOT"}, 1, "sentry: module state: no module nosuch (see sentry modules list)", false},
		{[]string{"modules", "enable", "nosuch", "--root", "$ROOT"}, 1, "sentry: module state: no module nosuch (see sentry modules list)", false},
		{[]string{"modules", "disable", "nosuch", "--root", "$ROOT"}, 1, "sentry: module state: no module nosuch (see sentry modules list)", false},
		{[]string{"modules", "remove", "web-nginx", "--root", "$ROOT"}, 2, `sentry: "web-nginx" names no version: write NAME@VERSION`, false},
		{[]string{"modules", "remove", "web-nginx@1.0.0", "--root", "$ROOT"}, 1, "sentry: module state: web-nginx@1.0.0 is not installed but builtin (builtin/web-nginx.toml): sentry does not remove it", false},
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
		if c.code == exitUsage && !c.stdout && !wantsJSON(nil, c.args) {
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
// code 2 (also with --json), has its exit codes in its help, and a group
// run without a subcommand, or with one it lacks, is a usage error.
func TestCLIEveryCommand(t *testing.T) {
	f := newCLIFixture(t)
	walk(newRootCommand(), func(c *cobra.Command) {
		path := strings.Fields(c.CommandPath())[1:]
		if !strings.Contains(c.Annotations[exitCodesKey], "  2  ") {
			t.Errorf("%q: no exit codes in its help: %q", c.CommandPath(), c.Annotations[exitCodesKey])
		}
		args := append(append([]string{}, path...), "--no-such-flag")
		f.check(t, cliCase{args: args, code: 2, first: "sentry: unknown flag: --no-such-flag"}, f.run(strings.NewReader(""), args...))
		args = append(args, "--json")
		f.check(t, cliCase{args: args, code: 2, first: "unknown flag: --no-such-flag"}, f.run(strings.NewReader(""), args...))
		if c.Annotations[groupKey] == "" {
			return
		}
		if c.HasParent() {
			f.check(t, cliCase{args: path, code: 2, first: "sentry: " + subPath(c) + " needs a subcommand: ..."}, f.run(strings.NewReader(""), path...))
		}
		args = append(append([]string{}, path...), "no-such-command")
		f.check(t, cliCase{args: args, code: 2, first: fmt.Sprintf("sentry: unknown command %q for %q", "no-such-command", c.CommandPath())},
			f.run(strings.NewReader(""), args...))
	})
}

// TestCLIHelp: --help exits 0 and shows the command's exit codes; the
// root's help shows the commands in groups.
func TestCLIHelp(t *testing.T) {
	f := newCLIFixture(t)
	r := f.run(strings.NewReader(""), "--help")
	if r.code != 0 {
		t.Fatalf("--help: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"\nCluster:\n", "\nConfiguration:\n", "\nVerification:\n", "\nPackages:\n", "\nBoot and failover:\n",
		"\nModules:\n", "\nOther:\n", "  status ", "  promote ", "\nExit codes:\n  0  success\n", "  4  the command must run as root"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("sentry --help lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Additional Commands") {
		t.Errorf("a command is in no group:\n%s", r.stdout)
	}
	// Only what an operator runs on a server: the lab is sentry-lab.
	if strings.Contains(r.stdout, "lab") {
		t.Errorf("sentry --help shows the lab:\n%s", r.stdout)
	}
	for args, want := range map[string]string{
		"drift --help":        "  1  not in step: drifted, or unknown",
		"ready --help":        "  5  UNKNOWN: nothing fails",
		"parity apply --help": "  2  bad flags or arguments; no terminal to ask for confirmation on, and no --yes",
		"status --help":       "  4  neither root nor in group sentry (the agent's read-only socket, agent.read_socket)",
		"promote --help":      "  4  not root: the agent's local API (agent.socket) is root's only",
		"config --help":       "  2  a missing or unknown subcommand",
		"help config check":   "  3  the configuration file (--config) is invalid",
	} {
		r := f.run(strings.NewReader(""), strings.Fields(args)...)
		if r.code != 0 || !strings.Contains(r.stdout, "\nExit codes:\n") || !strings.Contains(r.stdout, want) {
			t.Errorf("sentry %s: exit %d, no %q:\n%s%s", args, r.code, want, r.stdout, r.stderr)
		}
	}
}

// TestCLINotRoot runs the CLI as a user other than root (this test binary
// runs as nobody when the test runs as root): a socket that refuses the
// user, and an agent that drops a client that is not root, are exit code
// 4, as are the commands that check for root themselves. With a read-only
// socket that lets the user in, what only reads works through it and what
// acts is exit code 4, naming sudo.
func TestCLINotRoot(t *testing.T) {
	f := newCLIFixture(t)
	uid, gid := os.Getuid(), os.Getgid()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		// The other user reaches the fixture's files (its folder and
		// the one testing made for this test are root's, mode 0700).
		for _, d := range []string{filepath.Dir(f.dir), f.dir, f.path("$DIR/run"), f.path("$DIR/state")} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The test binary, where the other user can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := f.path("$DIR/sentry.test")
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

	// A socket the user may not connect to (mode 0 is the point: root
	// may, anyone else may not).
	refused := f.path("$DIR/run/agent.sock")
	ln, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(refused, 0); err != nil {
		t.Fatal(err)
	}
	// An agent that lets the user connect and closes the connection, as
	// the agent does to a client that is not root.
	drops := f.path("$DIR/run/drops.sock")
	ln2, err := net.Listen("unix", drops)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	os.Chmod(drops, 0o777)
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dropsCfg := f.path("$DIR/drops.toml")
	os.WriteFile(dropsCfg, fmt.Appendf(nil, "[node]\nname = \"node-t\"\nstate_dir = %q\n[agent]\nsocket = %q\n", f.path("$DIR/state"), drops), 0o644)

	const denied = "sentry: this command must run as root: the agent's socket $DIR/run/agent.sock: permission denied (the local API is root's; its read-only view, $DIR/run/agent-read.sock, is group sentry's)"
	const dropped = "sentry: this command must run as root: the agent at $DIR/run/drops.sock closed the connection (it answers root only)"
	for _, c := range []cliCase{
		{[]string{"status"}, 4, denied, false},
		{[]string{"status", "--json"}, 4, strings.TrimPrefix(denied, "sentry: "), false},
		{[]string{"config", "rollback", "HEAD~1", "--yes"}, 4, denied, false},
		{[]string{"config", "log"}, 4, denied, false},
		{[]string{"config", "show", "HEAD:/etc/hosts"}, 4, denied, false},
		{[]string{"config", "diff", "--json"}, 4, strings.TrimPrefix(denied, "sentry: "), false},
		{[]string{"parity", "apply", "--dry-run"}, 4, denied, false},
		{[]string{"status", "--config", dropsCfg}, 4, dropped, false},
		{[]string{"drift", "--json", "--config", dropsCfg}, 4, strings.TrimPrefix(dropped, "sentry: "), false},
		{[]string{"bootcheck", "run"}, 4, "sentry: bootcheck run: this command must run as root", false},
	} {
		f.check(t, c, runAs(c.args...))
	}

	// agent.socket refuses the user; agent.read_socket lets it in.
	fakeReader(t, f.path("$DIR/run/reader.sock"))
	readerCfg := f.path("$DIR/reader.toml")
	os.WriteFile(readerCfg, fmt.Appendf(nil, "[node]\nname = \"node-t\"\nstate_dir = %q\n[agent]\nsocket = %q\nread_socket = %q\n",
		f.path("$DIR/state"), refused, f.path("$DIR/run/reader.sock")), 0o644)
	const readOnly = "sentry: this command must run as root: read-only: this needs root (sudo sentry "
	for _, c := range []cliCase{
		{[]string{"status", "--json", "--config", readerCfg}, 0, "{", true},
		{[]string{"config", "rollback", "HEAD~1", "--yes", "--config", readerCfg}, 4, readOnly + "config rollback)", false},
		{[]string{"config", "show", "HEAD:/etc/hosts", "--config", readerCfg}, 4, readOnly + "config show)", false},
		{[]string{"promote", "--yes", "--json", "--config", readerCfg}, 4, strings.TrimPrefix(readOnly, "sentry: ") + "promote)", false},
	} {
		f.check(t, c, runAs(c.args...))
	}
}

// openTerminal returns a terminal (the follower of a new pseudo-terminal)
// on which answer has been typed.
func openTerminal(t *testing.T, answer string) *os.File {
	t.Helper()
	ptm, pts := openPTY(t)
	if _, err := ptm.WriteString(answer); err != nil {
		t.Fatal(err)
	}
	return pts
}

// TestCLIConfirm: on a terminal a command that changes the node asks, and
// does nothing unless the answer is yes.
func TestCLIConfirm(t *testing.T) {
	f := newCLIFixture(t)
	for _, c := range []struct {
		answer string
		cliCase
		prompt string
	}{
		{"no\n", cliCase{[]string{"promote"}, 1, "sentry: not promoted: the answer was not 'yes'", false},
			"Promote this secondary to primary? The old primary's disks will refuse to start as primary."},
		{"\n", cliCase{[]string{"promote", "--json"}, 1, "not promoted: the answer was not 'yes'", false}, "Promote this secondary to primary?"},
		{"yes\n", cliCase{[]string{"promote"}, 1, notRunning, false}, "Promote this secondary to primary?"},
		{"no\n", cliCase{[]string{"config", "rollback", "HEAD~1"}, 1, "sentry: not rolled back: the answer was not 'yes'", false},
			"Restore the configuration of HEAD~1 on this primary, as a new commit the secondary applies?"},
		{"no\n", cliCase{[]string{"modules", "use", "web-nginx@1.0.0", "--root", "$ROOT"}, 1, "sentry: nothing changed: the answer was not 'yes'", false},
			"Select web-nginx 1.0.0 (in use: 1.0.0)? The secondary follows."},
		{"yes\n", cliCase{[]string{"modules", "rollback", "web-nginx", "--root", "$ROOT"}, 1, "sentry: module state: module web-nginx has no previous version to roll back to", false},
			"Go back to the version of web-nginx used before, and pin it (in use: 1.0.0)? The secondary follows."},
	} {
		r := f.run(openTerminal(t, c.answer), c.args...)
		// The question, then the error: on the terminal, the answer's
		// line is between them.
		q, rest, ok := strings.Cut(r.stderr, " Type 'yes': ")
		if !ok || q != c.prompt && !strings.HasPrefix(q, c.prompt) {
			t.Errorf("%s: the question is not %q:\n%s", c.cliCase, c.prompt, r.stderr)
		}
		r.stderr = rest
		f.check(t, c.cliCase, r)
	}
	// Answered yes, the change is made.
	r := f.run(openTerminal(t, "yes\n"), "modules", "pin", "web-nginx", "--root", "$ROOT")
	if r.code != 0 {
		t.Fatalf("pin: %+v", r)
	}
	r = f.run(openTerminal(t, "yes\n"), "modules", "use", "web-nginx@1.0.0", "--root", "$ROOT", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"selected": "1.0.0"`) || !strings.Contains(r.stderr, "Type 'yes': ") {
		t.Fatalf("use, answered yes: %+v", r)
	}
}
