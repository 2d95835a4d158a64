package tui

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	"golang.org/x/sys/unix"

	"github.com/sentryha/sentry/internal/store"
)

// The figures of issue 17 for `sentry tui` itself: the first frame within
// 150 ms of starting it, and under 40 MB of RSS. BenchmarkStartup measures
// them on the built binary, as the operator runs it; nothing here asserts
// a time (a loaded machine is slow, not wrong).
//
//	nice -n 15 go test ./tui -run '^$' -bench Startup -benchtime 10x
//
// SENTRY_BIN names a built sentry to measure instead of building one;
// SENTRY_TUI_ENV adds to its environment (GOGC=50 GOMEMLIMIT=24MiB, say).

// sentryBinary is the sentry binary to run: SENTRY_BIN, or built from
// this module into dir.
func sentryBinary(b *testing.B, dir string) string {
	if p := os.Getenv("SENTRY_BIN"); p != "" {
		return p
	}
	bin := filepath.Join(dir, "sentry")
	cmd := exec.Command("go", "build", "-o", bin, "./sentry")
	cmd.Dir = ".." // the module's root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./sentry: %v\n%s", err, out)
	}
	return bin
}

// dayFixture is the READY pair with a whole day of results: every probe
// on both nodes every 30 s, as the Services screen fetches them.
func dayFixture() *fixture {
	f := readyFixture(fixtureNow)
	for _, n := range []string{"node-p", "node-s"} {
		for pi, p := range fixtureProbes {
			rs := make([]store.StoredResult, 0, historyRuns)
			for i := range historyRuns {
				start := fixtureNow.Add(-time.Duration(i)*30*time.Second - 10*time.Second)
				rs = append(rs, result(n, p, start, int64(8+(i*7+pi*13)%40+pi*5), i%700 != 9, ""))
			}
			f.results[n+"/"+p] = rs
		}
	}
	return f
}

// pty is a pseudo-terminal of w x h: the program's end (pts) and the
// terminal's (ptm), which draws what the program writes on an emulator
// and answers its queries as a terminal does.
type pty struct {
	ptm, pts *os.File
	mu       sync.Mutex
	term     *vt.Emulator
	// seen is when each of the texts watched for was first on the screen.
	watch map[string]time.Time
}

func openPty(b *testing.B, w, h int) *pty {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		b.Fatalf("no pseudo-terminal (/dev/ptmx): %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		b.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		b.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(w)}); err != nil {
		b.Fatal(err)
	}
	p := &pty{ptm: ptm, pts: pts, term: vt.NewEmulator(w, h), watch: map[string]time.Time{}}
	go io.Copy(ptm, p.term) // the terminal's answers
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := ptm.Read(buf)
			at := time.Now()
			p.mu.Lock()
			p.term.Write(buf[:n])
			screen := p.term.String()
			for s, t := range p.watch {
				if t.IsZero() && strings.Contains(screen, s) {
					p.watch[s] = at
				}
			}
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *pty) close() {
	p.pts.Close()
	p.ptm.Close()
	p.term.Close()
}

// watchFor notes when each of texts is first on the screen.
func (p *pty) watchFor(texts ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range texts {
		p.watch[s] = time.Time{}
	}
}

// waitFor waits until text is on the screen and says when it came.
func (p *pty) waitFor(b *testing.B, text string) time.Time {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		t, screen := p.watch[text], p.term.String()
		p.mu.Unlock()
		if !t.IsZero() {
			return t
		}
		if strings.Contains(screen, text) {
			return time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b.Fatalf("no %q on the screen:\n%s", text, p.term.String())
	return time.Time{}
}

// vmHWM is the peak resident set of process pid, from /proc, in bytes.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkStartup runs `sentry tui`, the built binary, on a
// pseudo-terminal of 80x24 against a fixture agent (a READY pair with a
// whole day of results: 4 probes on 2 nodes every 30 s) on a unix socket
// in a temp folder, and reports:
//
//   - ms-first-frame: from starting the process to its first frame on the
//     terminal (the tabs and the status line);
//   - ms-full-frame: to its first frame with the agent's answers (the
//     verdict READY and both nodes);
//   - MB-rss-peak: its peak resident set (VmHWM, read after it has shown
//     every screen, Services with the day's history and an opened report
//     included), the largest of the runs;
//   - MB-maxrss-exit: the same from getrusage after it exited.
//
// ns/op is the whole session: start, every screen, q, exit.
func BenchmarkStartup(b *testing.B) {
	dir := b.TempDir()
	bin := sentryBinary(b, dir)
	sock := filepath.Join(dir, "a.sock")
	f := dayFixture()
	f.serve(b, sock)
	conf := filepath.Join(dir, "sentry.toml")
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[node]\nname = \"node-p\"\nstate_dir = %q\n[agent]\nsocket = %q\n", filepath.Join(dir, "state"), sock), 0o644); err != nil {
		b.Fatal(err)
	}
	var first, full time.Duration
	var hwm, hwmFirst int64
	runs := 0
	for b.Loop() {
		p := openPty(b, 80, 24)
		// The first frame: the tabs and the status line, before the
		// agent answered or after. The full one: the agent's answers.
		p.watchFor("[1 Overview]", "VERDICT  READY")
		cmd := exec.Command(bin, "--config", conf, "tui")
		cmd.Env = append(os.Environ(), "TERM=xterm-256color")
		cmd.Env = append(cmd.Env, strings.Fields(os.Getenv("SENTRY_TUI_ENV"))...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.pts, p.pts, p.pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		f.took()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		first += p.waitFor(b, "[1 Overview]").Sub(start)
		p.waitFor(b, "node-s")
		full += p.waitFor(b, "VERDICT  READY").Sub(start)
		time.Sleep(100 * time.Millisecond)
		hwmFirst = max(hwmFirst, vmHWM(cmd.Process.Pid))
		// Every screen, the Services one with its day of history, and a
		// report opened.
		for i, s := range Screens() {
			p.ptm.WriteString(strconv.Itoa(i + 1))
			p.waitFor(b, fmt.Sprintf("[%d %s", i+1, strings.ToUpper(s[:1])+s[1:]))
		}
		p.ptm.WriteString("2")
		p.waitFor(b, "backup-restic")
		// Every probe's day on both nodes fetched and folded in.
		for n, deadline := 0, time.Now().Add(20*time.Second); n < 2*len(fixtureProbes); time.Sleep(5 * time.Millisecond) {
			for _, r := range f.took() {
				if strings.Contains(r, "n="+strconv.Itoa(historyRuns)) {
					n++
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d histories fetched of %d", n, 2*len(fixtureProbes))
			}
		}
		time.Sleep(100 * time.Millisecond)
		p.ptm.WriteString("8")
		p.waitFor(b, "2026-W48")
		p.ptm.WriteString("\r")
		p.waitFor(b, "built now from this node's store")
		hwm = max(hwm, vmHWM(cmd.Process.Pid))
		p.ptm.WriteString("q")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("sentry tui: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			b.Fatal("q does not quit")
		}
		p.close()
		runs++
	}
	b.ReportMetric(float64(first.Microseconds())/float64(runs)/1000, "ms-first-frame")
	b.ReportMetric(float64(full.Microseconds())/float64(runs)/1000, "ms-full-frame")
	b.ReportMetric(float64(hwmFirst)/(1<<20), "MB-rss-overview")
	b.ReportMetric(float64(hwm)/(1<<20), "MB-rss-peak")
}
