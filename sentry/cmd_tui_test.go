package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/sys/unix"
)

// openPTY returns both ends of a new pseudo-terminal of 80x24.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal (/dev/ptmx): %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}

// TestTUIAgentDown: started with the agent down, `sentry tui` opens on
// the terminal, says the agent is down and waits for it; q quits, exit 0.
func TestTUIAgentDown(t *testing.T) {
	f := newCLIFixture(t)
	ptm, pts := openPTY(t)
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	shown := func() string {
		mu.Lock()
		defer mu.Unlock()
		return ansi.Strip(screen.String())
	}
	var stderr bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- execute(context.Background(), f.args([]string{"tui"}), pts, pts, &stderr) }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(shown(), "AGENT DOWN") || !strings.Contains(shown(), "agent is not running") {
		if time.Now().After(deadline) {
			t.Fatalf("the screen does not say the agent is down:\n%s\nstderr: %s", shown(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ptm.WriteString("q"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 || stderr.Len() > 0 {
			t.Errorf("q: exit %d, stderr %q", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q does not quit")
	}
}

// TestNoTerminalQueryAtStart: a command other than tui, run as its own
// process on a terminal that answers nothing, with an answer typed ahead
// (as `script -qec 'sentry bootcheck adopt'` runs it, "yes" typed before
// the question), finishes at once, sends the terminal no query and leaves
// what was typed to whoever reads it. With bubbletea v1 linked in (tui),
// its package init asked the terminal for its background colour (OSC 11,
// then a cursor position report) in every command, read the typed-ahead
// keys while it waited for the answer, and gave up after 5 s.
//
// The process is this test binary running the CLI (cliEnv): it runs every
// package init the sentry binary runs. It is the leader of a session whose
// controlling terminal is the pseudo-terminal, in the foreground, as a
// command typed in a shell is (termenv asked only then).
func TestNoTerminalQueryAtStart(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// What a terminal library asks a terminal at start: colours, cursor
	// position, device attributes, keyboard enhancements, modes.
	queries := []string{"\x1b]11;?", "\x1b]10;?", "\x1b[6n", "\x1b[?6n", "\x1b[c", "\x1b[>c", "\x1b[0c",
		"\x1b[?u", "\x1b[?2026$p", "\x1b[?2027$p"}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"version"}, "sentry " + version},
		{[]string{"--help"}, "Usage:"},
	} {
		name := "sentry " + strings.Join(c.args, " ")
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			ptm, pts := openPTY(t)
			var mu sync.Mutex
			var written bytes.Buffer
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := ptm.Read(buf)
					mu.Lock()
					written.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			const typed = "yes\n"
			if _, err := ptm.WriteString(typed); err != nil {
				t.Fatalf("typing ahead: %v", err)
			}
			cmd := exec.Command(self, c.args...)
			// A TERM that has the queries: termenv sent none to screen,
			// tmux or dumb. Built with -race, a process waits 1 s before
			// it exits (GORACE atexit_sleep_ms), which is not the
			// command's time.
			cmd.Env = append(os.Environ(), cliEnv+"=1", "TERM=xterm-256color",
				"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var runErr error
			select {
			case runErr = <-waited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-waited
				t.Fatalf("%s: still running after 15 s", name)
			}
			took := time.Since(start)
			t.Logf("%s: %v", name, took)
			if runErr != nil {
				t.Errorf("%s: %v", name, runErr)
			}
			if took > time.Second {
				t.Errorf("%s took %v on a terminal that does not answer, want well under 1 s", name, took)
			}
			// What it wrote is on its way through the terminal; the
			// pseudo-terminal has it soon after the process ended.
			var out string
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				out = written.String()
				mu.Unlock()
				if strings.Contains(out, c.says) || time.Now().After(deadline) {
					break
				}
			}
			if !strings.Contains(out, c.says) {
				t.Errorf("%s: no %q on the terminal:\n%q", name, c.says, out)
			}
			var sent []string
			for _, q := range queries {
				if strings.Contains(out, q) {
					sent = append(sent, q)
				}
			}
			if len(sent) > 0 {
				t.Errorf("%s sent the terminal the queries %q:\n%q", name, sent, out)
			}
			// The answer typed ahead is still there to read, whole.
			left, err := unix.IoctlGetInt(int(pts.Fd()), unix.TIOCINQ)
			if err != nil {
				t.Fatalf("the input left on the terminal (TIOCINQ): %v", err)
			}
			if left != len(typed) {
				t.Errorf("%s read what was typed ahead: %d of its %d bytes left", name, left, len(typed))
			}
		})
	}
}
