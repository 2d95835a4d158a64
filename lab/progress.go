package lab

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progress shows what the lab's long steps are doing (building the base,
// the apt repository, installing a disk set, booting a node), as apt and
// debootstrap users expect: the step, how far it is, and the time so far.
//
// On a terminal every running task shares one status line, rewritten in
// place (and every second, so that the time moves). Otherwise (a log, CI)
// each step gets one line when it ends, with its time and the task's.
// Plain log lines (logf) go above the status line.
type progress struct {
	w     io.Writer
	tty   bool
	width int           // columns of the terminal
	every time.Duration // how often the status line is redrawn
	now   func() time.Time

	mu     sync.Mutex
	tasks  []*task // running, in the order they started
	shown  bool    // a status line is on the terminal
	ticker *time.Ticker
	stop   chan struct{}
}

// task is one long operation with its steps, e.g. "base" or "node P".
type task struct {
	p         *progress
	name      string
	start     time.Time
	stepName  string
	detail    string
	stepStart time.Time
}

func newProgress(w io.Writer, tty bool) *progress {
	p := &progress{w: w, tty: tty, width: 80, every: time.Second, now: time.Now}
	if f, ok := w.(*os.File); ok && tty {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 20 {
			p.width = int(ws.Col)
		}
	}
	return p
}

// logf prints one line, above the status line on a terminal.
func (p *progress) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.w, "lab: "+format+"\n", args...)
	p.drawLocked()
}

// task starts a task; its first step comes with step.
func (p *progress) task(name string) *task {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &task{p: p, name: name, start: p.now()}
	p.tasks = append(p.tasks, t)
	if p.tty && p.ticker == nil {
		p.ticker = time.NewTicker(p.every)
		p.stop = make(chan struct{})
		go p.tick(p.ticker, p.stop)
	}
	return t
}

func (p *progress) tick(t *time.Ticker, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.drawLocked()
			p.mu.Unlock()
		}
	}
}

// step sets the task's step and how far it is (detail, "" if unknown). A
// new step name ends the previous step.
func (t *task) step(name, detail string) {
	p := t.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if name != t.stepName {
		p.endStepLocked(t)
		t.stepName, t.stepStart = name, p.now()
	}
	t.detail = detail
	p.drawLocked()
}

// done ends the task and its last step.
func (t *task) done() {
	p := t.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.tasks {
		if x == t {
			p.tasks = append(p.tasks[:i], p.tasks[i+1:]...)
			break
		}
	}
	if p.tty {
		// The finished task's last state stays on the terminal as a line.
		if t.stepName != "" {
			p.clearLocked()
			fmt.Fprintf(p.w, "lab: %s\n", t.line(p.now()))
		}
	} else {
		p.endStepLocked(t)
	}
	t.stepName = ""
	if len(p.tasks) == 0 && p.ticker != nil {
		p.ticker.Stop()
		close(p.stop)
		p.ticker, p.stop = nil, nil
	}
	p.drawLocked()
}

// endStepLocked prints the line of t's finished step (not on a terminal).
func (p *progress) endStepLocked(t *task) {
	if p.tty || t.stepName == "" {
		return
	}
	now := p.now()
	s := t.name + ": " + t.stepName
	if t.detail != "" {
		s += ": " + t.detail
	}
	fmt.Fprintf(p.w, "lab: %s (%s; %s so far)\n", s, roundDur(now.Sub(t.stepStart)), roundDur(now.Sub(t.start)))
}

// line is the task as the status line shows it.
func (t *task) line(now time.Time) string {
	s := t.name + ": " + t.stepName
	if t.detail != "" {
		s += ": " + t.detail
	}
	return s + " [" + clock(now.Sub(t.start)) + "]"
}

func (p *progress) clearLocked() {
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

func (p *progress) drawLocked() {
	if !p.tty {
		return
	}
	var parts []string
	now := p.now()
	for _, t := range p.tasks {
		if t.stepName != "" {
			parts = append(parts, t.line(now))
		}
	}
	if len(parts) == 0 {
		p.clearLocked()
		return
	}
	line := "lab: " + strings.Join(parts, " | ")
	if r := []rune(line); len(r) > p.width-1 {
		line = string(r[:p.width-2]) + "…"
	}
	fmt.Fprint(p.w, "\r\033[K"+line)
	p.shown = true
}

// clock is a duration as m:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// roundDur rounds a duration for a log line.
func roundDur(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
