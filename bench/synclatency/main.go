// Command synclatency measures how soon a change of nginx's configuration
// on the primary (P) is served by the secondary (S), in a lab of its own
// named "lat": sentry's sync against an admin's own script, in the same run,
// the tools taking turns edit by edit, and prints where sentry's time goes.
//
//	go run ./bench/synclatency            (make bench-sync; root)
//
// Each edit changes a marker location (`location = /... { return 200
// "marker-N\n"; }`) with `sed -i` run in P through `sentry-lab exec`, and is
// timed to the first HTTP answer of S's nginx (port 80, asked from the
// office namespace every 10 ms, a new connection each time) with the new
// marker, from two points: the command's start (lab exec's own start
// included), and the change itself (the file's modification time on P, read
// with stat afterwards: the nodes share the host's clock).
//
//   - sentry: `sed -i` of /etc/nginx/sites-enabled/default on P; the
//     agents do the rest (watch, commit, hello, fetch, check, write,
//     nginx -t, reload).
//   - reference: what an admin scripts without sentry, in the same command
//     as the edit, so that it starts right after it: `sed -i` of an
//     included file outside sentry's tracked paths
//     (/srv/synclatency/marker.conf, so that sentry carries nothing), then
//     one ssh to S (a key made for the bench, removed at the end) that
//     writes the file there and runs `systemctl reload nginx`.
//
// It prints a table (median, min and max of each figure for both), the
// ratios sentry/reference, and a verdict on the goal, the median from the
// change:
//
//	goal: change on P served by S, median at most 0.5 s: met (0.31 s)
//
// and exits 0 whatever it says, unless -require-goal (then 2 when it is
// not met). With -breakdown (the default) the primary's agent logs at debug
// level for the run, and each sentry edit is followed through the
// journals and events of both nodes: the watcher's first event, its quiet
// window, the commit, S's sync, nginx's reload, the first answer. With
// -load a CPU hog (a shell loop at the bench's own niceness, as the lab's
// nodes have it) runs beside the edits, as on a busy CI machine; it is
// killed by its PID at the end.
//
// Each edit follows the one before as soon as it was served and its
// modification time read (-pause adds a wait), as in e2e TestConfigSync: the
// agents' work after an apply (events, hellos, the store's writes) is then
// still going on when the next edit comes, as it is for an admin making
// edits one after the other.
//
// The lab is brought up afresh and always taken down at the end, on an
// error or an interrupt too.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sentryha/sentry/lab"
)

const (
	labName  = "lat"
	site     = "/etc/nginx/sites-enabled/default" // a link to sites-available: sed --follow-symlinks
	refDir   = "/srv/synclatency"
	refFile  = refDir + "/marker.conf"
	keyFile  = "/root/.ssh/id_synclatency"
	knownF   = "/root/.ssh/synclatency_known_hosts"
	keyTag   = "sentry-synclatency"
	pollStep = 10 * time.Millisecond
)

func main() {
	edits := flag.Int("edits", 20, "edits per tool, the tools taking turns (the median is shown)")
	goal := flag.Duration("goal", 500*time.Millisecond, "largest median from the change to S serving it that meets the goal")
	require := flag.Bool("require-goal", false, "exit 2 when the goal is not met")
	sentryBin := flag.String("sentry", "", "sentry binary or .deb to install in the lab (default: build bin/sentry)")
	labBin := flag.String("lab", "", "sentry-lab binary (default: build bin/sentry-lab)")
	load := flag.Bool("load", false, "run CPU hogs beside the edits (a busy machine)")
	hogs := flag.Int("hogs", 1, "CPU hogs under -load")
	breakdown := flag.Bool("breakdown", true, "log at debug level on P and show where sentry's time goes")
	pause := flag.Duration("pause", 0, "pause after each edit is served and stat'ed (none, as in e2e TestConfigSync: the next edit meets the agents' after-work)")
	verbose := flag.Bool("v", false, "print each edit")
	flag.Parse()
	if *edits < 1 {
		fmt.Fprintln(os.Stderr, "synclatency: -edits must be at least 1")
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "synclatency: the lab needs root")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{edits: *edits, goal: *goal, load: *load, hogs: *hogs, breakdown: *breakdown, pause: *pause, verbose: *verbose}
	met, err := b.run(ctx, *sentryBin, *labBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "synclatency:", err)
		os.Exit(1)
	}
	if !met && *require {
		os.Exit(2)
	}
}

type bench struct {
	edits     int
	goal      time.Duration
	load      bool
	hogs      int
	breakdown bool
	pause     time.Duration
	verbose   bool

	labBin  string
	sentry  string
	s       string // S's address
	lab     *lab.Lab
	hogCmds []*exec.Cmd
}

// sample is one edit, timed.
type sample struct {
	start, change, served time.Time
}

func (s sample) fromChange() time.Duration  { return s.served.Sub(s.change) }
func (s sample) fromCommand() time.Duration { return s.served.Sub(s.start) }

func (b *bench) run(ctx context.Context, sentryBin, labBin string) (bool, error) {
	if err := b.binaries(sentryBin, labBin); err != nil {
		return false, err
	}
	b.lab = lab.New(lab.Options{Name: labName})
	b.s = strings.Split(lab.Sets[1].Address, "/")[0]
	// Whatever happens from here, the lab and the hogs go.
	defer b.down()
	if err := b.setup(ctx); err != nil {
		return false, err
	}
	if b.load {
		if err := b.startHogs(); err != nil {
			return false, err
		}
	}
	var sentryS, refS []sample
	for i := 1; i <= b.edits; i++ {
		turns := []string{"sentry", "reference"}
		if i%2 == 0 {
			turns = []string{"reference", "sentry"}
		}
		for _, t := range turns {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			var s sample
			var err error
			if t == "sentry" {
				s, err = b.editSentry(ctx, i)
				sentryS = append(sentryS, s)
			} else {
				s, err = b.editRef(ctx, i)
				refS = append(refS, s)
			}
			if err != nil {
				return false, fmt.Errorf("%s, edit %d: %w", t, i, err)
			}
			if b.verbose {
				fmt.Printf("edit %2d %-9s from the change %6s, from the command %6s\n", i, t,
					ms(s.fromChange()), ms(s.fromCommand()))
			}
			time.Sleep(b.pause)
		}
	}
	b.stopHogs()

	fmt.Printf("\nlab %q, %d edits per tool, the tools taking turns; S's nginx asked from the office every %s%s\n\n",
		labName, b.edits, pollStep, map[bool]string{true: fmt.Sprintf("; under load (%d CPU hog(s))", b.hogs), false: ""}[b.load])
	fmt.Printf("%-44s %28s   %28s\n", "", "from the change (mtime on P)", "from the command (lab exec)")
	fmt.Printf("%-44s %8s %9s %9s   %8s %9s %9s\n", "tool", "median", "min", "max", "median", "min", "max")
	row := func(name string, ss []sample) (time.Duration, time.Duration) {
		c := stats(ss, sample.fromChange)
		m := stats(ss, sample.fromCommand)
		fmt.Printf("%-44s %8s %9s %9s   %8s %9s %9s\n", name, ms(c[0]), ms(c[1]), ms(c[2]), ms(m[0]), ms(m[1]), ms(m[2]))
		return c[0], m[0]
	}
	sc, sm := row("sentry (sed -i on P; the agents do the rest)", sentryS)
	rc, rm := row("reference (sed -i; ssh: cat, systemctl reload)", refS)
	fmt.Printf("\nsentry / reference: %.2fx from the change, %.2fx from the command\n", float64(sc)/float64(rc), float64(sm)/float64(rm))
	if b.breakdown {
		if err := b.explain(sentryS, refS); err != nil {
			fmt.Fprintln(os.Stderr, "synclatency: no breakdown:", err)
		}
	}
	line, met := verdict(b.goal, sc)
	fmt.Println()
	fmt.Println(line)
	return met, nil
}

// verdict holds the median from the change against the goal.
func verdict(goal, median time.Duration) (string, bool) {
	head := fmt.Sprintf("goal: change on P served by S, median at most %s: ", secs(goal))
	if median <= goal {
		return head + fmt.Sprintf("met (%s)", secs(median)), true
	}
	return head + fmt.Sprintf("NOT met (%s)", secs(median)), false
}

func secs(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
	if d%(10*time.Millisecond) == 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + " s"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
}

// stats gives the median, min and max of f over ss.
func stats(ss []sample, f func(sample) time.Duration) [3]time.Duration {
	var ds []time.Duration
	for _, s := range ss {
		ds = append(ds, f(s))
	}
	return mmm(ds)
}

func mmm(ds []time.Duration) [3]time.Duration {
	if len(ds) == 0 {
		return [3]time.Duration{}
	}
	ds = append([]time.Duration(nil), ds...)
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return [3]time.Duration{ds[len(ds)/2], ds[0], ds[len(ds)-1]}
}

// binaries builds bin/sentry and bin/sentry-lab, or takes the given ones.
func (b *bench) binaries(sentryBin, labBin string) error {
	build := func(out, pkg string) error {
		fmt.Printf("building %s\n", out)
		if o, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build -o %s %s: %v\n%s", out, pkg, err, o)
		}
		return nil
	}
	if labBin == "" {
		labBin = "bin/sentry-lab"
		if err := build(labBin, "./cmd/sentry-lab"); err != nil {
			return err
		}
		if sentryBin == "" {
			// sentry-lab installs the sentry beside it.
			if err := build("bin/sentry", "./sentry"); err != nil {
				return err
			}
		}
	}
	b.labBin = labBin
	if sentryBin != "" {
		abs, err := filepath.Abs(sentryBin)
		if err != nil {
			return err
		}
		b.sentry = abs
	}
	return nil
}

// labCmd runs sentry-lab --name lat with args; the output is returned.
func (b *bench) labCmd(stdin io.Reader, args ...string) (string, error) {
	full := []string{"--name", labName}
	if b.sentry != "" && len(args) > 0 && args[0] == "up" {
		full = append(full, "--sentry", b.sentry)
	}
	cmd := exec.Command(b.labBin, append(full, args...)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("sentry-lab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (b *bench) exec(node string, args ...string) (string, error) {
	return b.labCmd(nil, append([]string{"exec", node, "--"}, args...)...)
}

// down removes the bench's key, stops the hogs and takes the lab down.
func (b *bench) down() {
	b.stopHogs()
	fmt.Println("taking the lab down")
	b.exec("P", "rm", "-f", keyFile, keyFile+".pub", knownF)
	b.exec("S", "sed", "-i", "/ "+keyTag+"$/d", "/root/.ssh/authorized_keys")
	if out, err := b.labCmd(nil, "down"); err != nil {
		fmt.Fprintf(os.Stderr, "synclatency: lab down: %v\n%s", err, out)
	}
}

func (b *bench) startHogs() error {
	for i := 0; i < b.hogs; i++ {
		// At the bench's own niceness, which the lab's nodes inherit.
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			return err
		}
		b.hogCmds = append(b.hogCmds, cmd)
		fmt.Printf("CPU hog started (pid %d)\n", cmd.Process.Pid)
	}
	return nil
}

// stopHogs kills the hogs it started, by their recorded PIDs.
func (b *bench) stopHogs() {
	for _, c := range b.hogCmds {
		c.Process.Kill()
		c.Wait()
		fmt.Printf("CPU hog stopped (pid %d)\n", c.Process.Pid)
	}
	b.hogCmds = nil
}

// setup brings the lab up and pairs it, puts both markers in place and
// served by S, and gives P an ssh key that S takes.
func (b *bench) setup(ctx context.Context) error {
	fmt.Printf("bringing up lab %q\n", labName)
	t0 := time.Now()
	if _, err := b.labCmd(nil, "up"); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := b.labCmd(nil, "pair", "--cluster", labName); err != nil {
		return err
	}
	fmt.Printf("lab up and paired in %s\n", time.Since(t0).Round(100*time.Millisecond))
	if err := b.waitEvent(ctx, "S", "config-applied", 30*time.Second); err != nil {
		return err
	}
	for _, n := range []string{"P", "S"} {
		if _, err := b.exec(n, "sh", "-c", `mkdir -p `+refDir+` && printf 'location = /ref-marker { return 200 "ref-0\\n"; }\n' > `+refFile); err != nil {
			return err
		}
	}
	// The sentry marker, and the include of the reference's file, in
	// the site: carried to S by sentry.
	if _, err := b.exec("P", "sed", "-i", "--follow-symlinks",
		`s|^\tserver_name _;|\tserver_name _;\n\tlocation = /sentry-marker { return 200 "marker-0\\n"; }\n\tinclude `+refFile+`;|`, site); err != nil {
		return err
	}
	// The key: made on P, taken by S's root, S's host key learnt once.
	if _, err := b.exec("P", "sh", "-c", `mkdir -p -m 700 /root/.ssh && rm -f `+keyFile+` `+keyFile+`.pub `+knownF+
		` && ssh-keygen -q -t ed25519 -N '' -C `+keyTag+` -f `+keyFile); err != nil {
		return err
	}
	pub, err := b.exec("P", "cat", keyFile+".pub")
	if err != nil {
		return err
	}
	if _, err := b.labCmd(strings.NewReader(strings.TrimSpace(pub)+"\n"), "exec", "S", "--", "sh", "-c",
		"mkdir -p -m 700 /root/.ssh && cat >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys"); err != nil {
		return err
	}
	if _, err := b.exec("P", append(b.ssh("accept-new"), "true")...); err != nil {
		return fmt.Errorf("ssh from P to S with the bench's key: %w", err)
	}
	if b.breakdown {
		// The watcher's debug line says when it saw each change.
		if _, err := b.exec("P", "sh", "-c", `grep -q '^\[log\]' /etc/sentry/sentry.toml || printf '\n[log]\nlevel = "debug"\n' >> /etc/sentry/sentry.toml; systemctl kill -s HUP --kill-whom=main sentry-agent`); err != nil {
			return err
		}
	}
	for _, m := range [][2]string{{"/sentry-marker", "marker-0"}, {"/ref-marker", "ref-0"}} {
		if _, err := b.waitServed(ctx, m[0], m[1], 30*time.Second); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	time.Sleep(time.Second)
	return nil
}

func (b *bench) ssh(hostKeys string) []string {
	return []string{"ssh", "-i", keyFile, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=" + hostKeys,
		"-o", "UserKnownHostsFile=" + knownF, "root@" + b.s}
}

type event struct {
	Time    time.Time         `json:"time"`
	Kind    string            `json:"kind"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

func (b *bench) events(node string) ([]event, error) {
	out, err := b.exec(node, "sentry", "events", "-n", "2000", "--json")
	if err != nil {
		return nil, err
	}
	var evs []event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		return nil, fmt.Errorf("sentry events on %s: %v", node, err)
	}
	return evs, nil
}

func (b *bench) waitEvent(ctx context.Context, node, kind string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		evs, _ := b.events(node)
		for _, e := range evs {
			if e.Kind == kind {
				return nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("no %s event on %s within %s", kind, node, timeout)
}

// get asks S's nginx for path from the office, on a new connection.
func (b *bench) get(path string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, Dial: func(network, addr string) (net.Conn, error) {
		c, err := lab.DialFrom(b.lab.NS("office"), "tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Get("http://" + b.s + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// waitServed polls S until it answers path with want; it returns when the
// answer came.
func (b *bench) waitServed(ctx context.Context, path, want string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		body, err := b.get(path)
		if err == nil && body == want {
			return time.Now(), nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%q", body)
		}
		time.Sleep(pollStep)
	}
	return time.Time{}, fmt.Errorf("S did not serve %s = %q within %s (last: %s)", path, want, timeout, last)
}

// timed runs the edit command in P while S is polled for the new marker,
// then reads the file's modification time on P.
func (b *bench) timed(ctx context.Context, path, want, file string, cmd ...string) (sample, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		at  time.Time
		err error
	}
	ch := make(chan res, 1)
	s := sample{start: time.Now()}
	go func() {
		at, err := b.waitServed(pctx, path, want, 10*time.Second)
		ch <- res{at, err}
	}()
	if _, err := b.exec("P", cmd...); err != nil {
		return s, err
	}
	r := <-ch
	if r.err != nil {
		return s, r.err
	}
	s.served = r.at
	out, err := b.exec("P", "stat", "-L", "-c", "%.9Y", file)
	if err != nil {
		return s, err
	}
	sec, nsec, _ := strings.Cut(strings.TrimSpace(out), ".")
	si, err1 := strconv.ParseInt(sec, 10, 64)
	ni, err2 := strconv.ParseInt(nsec, 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("stat of %s on P: %q", file, out)
	}
	s.change = time.Unix(si, ni)
	return s, nil
}

func (b *bench) editSentry(ctx context.Context, i int) (sample, error) {
	want := fmt.Sprintf("marker-%d", i)
	return b.timed(ctx, "/sentry-marker", want, site,
		"sed", "-i", "--follow-symlinks", fmt.Sprintf(`s|marker-%d|%s|`, i-1, want), site)
}

// editRef is the admin's script: the edit, then one ssh that writes the
// file on S and reloads nginx there.
func (b *bench) editRef(ctx context.Context, i int) (sample, error) {
	want := fmt.Sprintf("ref-%d", i)
	script := `sed -i "$1" ` + refFile + ` && ` + strings.Join(b.ssh("yes"), " ") +
		` 'cat > ` + refFile + ` && systemctl reload nginx' < ` + refFile
	return b.timed(ctx, "/ref-marker", want, refFile, "sh", "-c", script, "sh", fmt.Sprintf(`s|ref-%d|%s|`, i-1, want))
}

func (b *bench) explain(sentryS, refS []sample) error {
	since := fmt.Sprintf("@%d", sentryS[0].start.Add(-5*time.Second).Unix())
	if len(refS) > 0 && refS[0].start.Before(sentryS[0].start) {
		since = fmt.Sprintf("@%d", refS[0].start.Add(-5*time.Second).Unix())
	}
	pj, err := b.journal("P", since, "sentry-agent")
	if err != nil {
		return err
	}
	sj, err := b.journal("S", since, "nginx")
	if err != nil {
		return err
	}
	pe, err := b.events("P")
	if err != nil {
		return err
	}
	se, err := b.events("S")
	if err != nil {
		return err
	}
	type burst struct {
		first, last, fired    time.Time
		events, edits, window string
		trace                 string
	}
	var bursts []burst
	for _, j := range pj {
		if !strings.HasPrefix(j.msg, "config watcher: burst committed") {
			continue
		}
		var bu burst
		bu.first, _ = time.Parse(time.RFC3339Nano, j.fields["SENTRY_FIRST_EVENT"])
		bu.last, _ = time.Parse(time.RFC3339Nano, j.fields["SENTRY_LAST_EVENT"])
		bu.fired, _ = time.Parse(time.RFC3339Nano, j.fields["SENTRY_FIRED"])
		bu.events, bu.edits, bu.window = j.fields["SENTRY_EVENTS"], j.fields["SENTRY_EDITS"], j.fields["SENTRY_WINDOW"]
		bu.trace = j.fields["SENTRY_TRACE"]
		bursts = append(bursts, bu)
	}
	if len(bursts) == 0 {
		return errors.New("P logged no watcher line (log level debug not in force?)")
	}
	var reloading, reloaded []time.Time
	for _, j := range sj {
		if strings.HasPrefix(j.msg, "Reloading ") {
			reloading = append(reloading, j.at)
		} else if strings.HasPrefix(j.msg, "Reloaded ") {
			reloaded = append(reloaded, j.at)
		}
	}
	firstAfter := func(ts []time.Time, t time.Time) (time.Time, bool) {
		for _, x := range ts {
			if !x.Before(t) {
				return x, true
			}
		}
		return time.Time{}, false
	}
	stages := []string{
		"change -> P's watcher has its first event",
		"quiet window (first event -> timer fires)",
		"commit (read, hash, objects, fsyncs, ref)",
		"-> S starts its sync (event, hello, kick)",
		"S: fetch, checks, write, nginx -t",
		"nginx reload job (Reloading -> Reloaded)",
		"reloaded -> first answer with the marker",
		"total: change -> served",
		"S's sync end (event) - first answer",
	}
	per := make([][]time.Duration, len(stages))
	matched, windows := 0, []time.Duration{}
	for _, s := range sentryS {
		var bu *burst
		for k := range bursts {
			// The first burst that ends after the change (its first
			// event, sed's temp file, may come before the write that
			// stamps the change when sed is held off the CPU).
			if bursts[k].fired.After(s.change) {
				bu = &bursts[k]
				break
			}
		}
		skip := func(why string) {
			if !b.verbose {
				return
			}
			fmt.Printf("sentry edit at %s (total %s) not followed: %s\n", s.change.Format("15:04:05.000"), ms(s.fromChange()), why)
			// What the nodes recorded meanwhile.
			for _, n := range []struct {
				name string
				evs  []event
			}{{"P", pe}, {"S", se}} {
				for _, e := range n.evs {
					if !e.Time.Before(s.change) && !e.Time.After(s.served.Add(time.Second)) {
						fmt.Printf("  %s %s %s %s\n", n.name, e.Time.Format("15:04:05.000"), e.Kind, e.Message)
					}
				}
			}
		}
		if bu == nil {
			skip("no watcher line on P")
			continue
		}
		var commit event
		for _, e := range pe {
			if e.Kind == "config-commit" && !e.Time.Before(bu.fired) {
				if commit.Kind == "" || e.Time.Before(commit.Time) {
					commit = e
				}
			}
		}
		var applied event
		for _, e := range se {
			if e.Kind == "config-applied" && e.Fields["commit"] == commit.Fields["commit"] {
				applied = e
			}
		}
		if commit.Kind == "" || applied.Kind == "" {
			skip(fmt.Sprintf("commit event %q, S's applied event %q", commit.Fields["commit"], applied.Kind))
			continue
		}
		msApplied, _ := strconv.Atoi(applied.Fields["ms"])
		syncStart := applied.Time.Add(-time.Duration(msApplied) * time.Millisecond)
		r1, ok1 := firstAfter(reloading, syncStart)
		r2, ok2 := firstAfter(reloaded, r1)
		// The journal stamps a line when journald reads it: a new worker
		// may answer a few ms before "Reloaded" is stamped.
		if !ok1 || !ok2 || r2.After(s.served.Add(50*time.Millisecond)) {
			skip(fmt.Sprintf("S's sync from %s, nginx reloading %s, reloaded %s, served %s", syncStart.Format("15:04:05.000"),
				r1.Format("15:04:05.000"), r2.Format("15:04:05.000"), s.served.Format("15:04:05.000")))
			continue
		}
		matched++
		windows = append(windows, bu.fired.Sub(bu.last))
		if b.verbose {
			fmt.Printf("sentry edit at %s: %s watcher events over %s, counted as %s edit(s), window %s; total %s\n",
				s.change.Format("15:04:05.000"), bu.events, ms(bu.last.Sub(bu.first)), bu.edits, bu.window, ms(s.fromChange()))
			if bu.edits != "1" {
				fmt.Printf("  its events: %s\n", bu.trace)
			}
		}
		for k, d := range []time.Duration{
			bu.first.Sub(s.change), bu.fired.Sub(bu.first), commit.Time.Sub(bu.fired),
			syncStart.Sub(commit.Time), r1.Sub(syncStart), r2.Sub(r1), s.served.Sub(r2), s.served.Sub(s.change),
			applied.Time.Sub(s.served),
		} {
			per[k] = append(per[k], d)
		}
	}
	fmt.Printf("\nwhere sentry's time goes (%d of %d edits followed through both nodes' journals and events; the nodes share the host's clock)\n",
		matched, len(sentryS))
	fmt.Printf("%-46s %9s %9s %9s\n", "stage", "median", "min", "max")
	for k, name := range stages {
		m := mmm(per[k])
		fmt.Printf("%-46s %9s %9s %9s\n", name, ms(m[0]), ms(m[1]), ms(m[2]))
	}
	m := mmm(windows)
	fmt.Printf("(the quiet window after the burst's last event: median %s, max %s; %s after a lone edit)\n", ms(m[0]), ms(m[2]), "150 ms")
	// The reference: the edit, ssh, the reload job, the answer.
	var rp [3][]time.Duration
	for _, s := range refS {
		r1, ok1 := firstAfter(reloading, s.change)
		r2, ok2 := firstAfter(reloaded, r1)
		if !ok1 || !ok2 || r2.After(s.served.Add(50*time.Millisecond)) {
			continue
		}
		rp[0] = append(rp[0], r1.Sub(s.change))
		rp[1] = append(rp[1], r2.Sub(r1))
		rp[2] = append(rp[2], s.served.Sub(r2))
	}
	fmt.Printf("\nthe reference (%d of %d edits followed)\n", len(rp[0]), len(refS))
	for k, name := range []string{"change -> nginx Reloading (ssh, cat)", "nginx reload job", "reloaded -> first answer"} {
		m := mmm(rp[k])
		fmt.Printf("%-46s %9s %9s %9s\n", name, ms(m[0]), ms(m[1]), ms(m[2]))
	}
	return nil
}

type jline struct {
	at     time.Time
	msg    string
	fields map[string]string
}

// journal reads a node's journal of the given units since since.
func (b *bench) journal(node, since string, units ...string) ([]jline, error) {
	args := []string{"journalctl", "--no-pager", "-o", "json", "--since", since}
	for _, u := range units {
		args = append(args, "-u", u)
	}
	out, err := b.exec(node, args...)
	if err != nil {
		return nil, err
	}
	var ls []jline
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var raw map[string]any
		if json.Unmarshal(sc.Bytes(), &raw) != nil {
			continue
		}
		f := map[string]string{}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				f[k] = s
			}
		}
		us, err := strconv.ParseInt(f["__REALTIME_TIMESTAMP"], 10, 64)
		if err != nil {
			continue
		}
		ls = append(ls, jline{at: time.UnixMicro(us), msg: f["MESSAGE"], fields: f})
	}
	return ls, nil
}
