package lab

import (
	"strings"
	"testing"
	"time"
)

// fakeClock moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestProgress(tty bool) (*progress, *strings.Builder, *fakeClock) {
	var b strings.Builder
	c := &fakeClock{t: time.Date(2026, 12, 2, 22, 0, 0, 0, time.UTC)}
	p := newProgress(&b, tty)
	p.now = c.now
	p.every = time.Hour // the test draws; the ticker must not
	p.width = 200
	return p, &b, c
}

func TestProgressLog(t *testing.T) {
	// Not a terminal (a log, CI): one line per step, when it ends, with
	// its own time and the task's.
	p, b, c := newTestProgress(false)
	p.logf("building the base")
	task := p.task("base")
	task.step(dbsResolve, "")
	c.add(4 * time.Second)
	task.step(dbsRetrieve, "1 retrieved")
	c.add(70 * time.Second)
	task.step(dbsRetrieve, "187 retrieved")
	task.step(dbsUnpackReq, "3/80 packages")
	c.add(12 * time.Second)
	task.step(dbsUnpackReq, "80/80 packages")
	task.done()
	want := `lab: building the base
lab: base: resolving dependencies (4s; 4s so far)
lab: base: retrieving packages: 187 retrieved (1m10s; 1m14s so far)
lab: base: unpacking the required packages: 80/80 packages (12s; 1m26s so far)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	// A terminal: one status line, rewritten; log lines go above it; a
	// finished task leaves its last state as a line.
	p, b, c := newTestProgress(true)
	task := p.task("base")
	task.step(dbsRetrieve, "5 retrieved")
	c.add(65 * time.Second)
	task.step(dbsRetrieve, "90 retrieved")
	p.logf("a message")
	node := p.task("node P")
	node.step("booting on hw-a", "system starting, 3/9 services active")
	task.done()
	node.done()
	got := strings.Split(b.String(), "\r\033[K")
	want := []string{
		"",
		"lab: base: retrieving packages: 5 retrieved [0:00]",
		"lab: base: retrieving packages: 90 retrieved [1:05]",
		"lab: a message\n",
		"lab: base: retrieving packages: 90 retrieved [1:05]",
		"lab: base: retrieving packages: 90 retrieved [1:05] | node P: booting on hw-a: system starting, 3/9 services active [0:00]",
		"lab: base: retrieving packages: 90 retrieved [1:05]\n",
		"lab: node P: booting on hw-a: system starting, 3/9 services active [0:00]",
		"lab: node P: booting on hw-a: system starting, 3/9 services active [0:00]\n",
	}
	if strings.Join(got, "\n~~\n") != strings.Join(want, "\n~~\n") {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if p.ticker != nil {
		t.Error("the ticker runs on with no task")
	}
}

func TestProgressTruncates(t *testing.T) {
	p, b, _ := newTestProgress(true)
	p.width = 30
	p.task("base").step(strings.Repeat("x", 100), "")
	line := strings.TrimPrefix(b.String(), "\r\033[K")
	if n := len([]rune(line)); n != 29 || !strings.HasSuffix(line, "…") {
		t.Errorf("line of %d runes: %q", n, line)
	}
}
