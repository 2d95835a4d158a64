package store

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv names the store file TestHelperWriter writes to. The helper does
// nothing unless it is set.
const helperEnv = "STORE_HELPER_DB"

// helperPayload is the few hundred bytes each helper event carries.
var helperPayload = strings.Repeat("0123456789abcdef", 20)

// TestHelperWriter is not a test of its own: TestKillDuringWrites runs the
// test binary again with only this test selected and helperEnv set, and the
// child appends events until it is killed, printing each committed seq on a
// line of its own.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	s, err := Open(path, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	// The parent kills this process long before; the limit only keeps an
	// orphan from writing forever.
	stop := time.Now().Add(60 * time.Second)
	line := make([]byte, 0, 32)
	for i := 0; time.Now().Before(stop); i++ {
		seq, err := s.AppendEvent(Event{
			Time:    time.Now(),
			Kind:    "crash-test",
			Node:    "helper",
			Message: fmt.Sprintf("pid %d event %d", os.Getpid(), i),
			Fields:  map[string]string{"payload": helperPayload},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		// One unbuffered write per line, well under PIPE_BUF, so a kill can
		// never leave half a line behind.
		line = strconv.AppendUint(line[:0], seq, 10)
		line = append(line, '\n')
		if _, err := os.Stdout.Write(line); err != nil {
			os.Exit(3)
		}
	}
	s.Close()
	os.Exit(4)
}

// TestKillDuringWrites kills a writer process with SIGKILL at random moments
// and checks that every append it reported as committed is still in the
// file, which must open and pass bbolt's consistency check each time.
func TestKillDuringWrites(t *testing.T) {
	const (
		rounds     = 20
		minCommits = 3  // commits seen from a child before the random wait
		maxWait    = 30 // ms of further writing before the kill
	)
	path := filepath.Join(t.TempDir(), "state.db")
	var (
		printed   []uint64 // every seq any child reported, in order
		lastSeq   uint64   // highest seq printed so far
		totalTime time.Duration
		unprinted int // rounds whose child died after a commit but before printing it
	)
	start := time.Now()
	for round := 0; round < rounds; round++ {
		got, elapsed := runAndKill(t, path, round, minCommits, time.Duration(rand.IntN(maxWait+1))*time.Millisecond)
		totalTime += elapsed
		for _, seq := range got {
			if seq <= lastSeq {
				t.Fatalf("round %d: child reported seq %d after seq %d had been reported: a commit was lost or a seq reused", round, seq, lastSeq)
			}
			lastSeq = seq
		}
		printed = append(printed, got...)

		s, err := Open(path, Options{LockTimeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		if err := s.Check(); err != nil {
			s.Close()
			t.Fatalf("round %d: %v", round, err)
		}
		evs, err := s.Events(0, 0)
		if err != nil {
			s.Close()
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		// The file holds seq 1..N without gaps or repeats, the events are
		// intact, and N is the last reported seq or the one after it (the
		// child may die between a commit and its print).
		present := make(map[uint64]bool, len(evs))
		for i, e := range evs {
			if e.Seq != uint64(i+1) {
				t.Fatalf("round %d: event %d in the file has seq %d, want %d (seqs must run 1, 2, 3, ...)", round, i, e.Seq, i+1)
			}
			if e.Kind != "crash-test" || e.Fields["payload"] != helperPayload {
				t.Fatalf("round %d: event %d is damaged: %+v", round, e.Seq, e)
			}
			present[e.Seq] = true
		}
		for _, seq := range printed {
			if !present[seq] {
				t.Fatalf("round %d: seq %d was reported committed but is not in the file (file holds %d events)", round, seq, len(evs))
			}
		}
		switch n := uint64(len(evs)); n {
		case lastSeq:
		case lastSeq + 1:
			unprinted++
			// The next child's seqs must come after this commit too.
			lastSeq = n
		default:
			t.Fatalf("round %d: file holds %d events, but the last reported seq is %d", round, n, lastSeq)
		}
	}
	t.Logf("%d rounds in %v: %d commits seen in total, highest seq %d; %d kills fell between a commit and its report; children ran %v, about %v per commit including start-up",
		rounds, time.Since(start).Round(time.Millisecond), len(printed), lastSeq, unprinted, totalTime.Round(time.Millisecond),
		(totalTime / time.Duration(max(len(printed), 1))).Round(time.Microsecond))
}

// runAndKill starts one writer child on path, reads its output until it has
// reported minCommits commits, lets it run for wait more, kills it with
// SIGKILL and reads its output to the end. It returns the seqs the child
// reported and how long the child ran.
func runAndKill(t *testing.T, path string, round, minCommits int, wait time.Duration) ([]uint64, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	waited := false
	defer func() {
		if !waited { // a t.Fatal below: do not leave the child behind
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	}()

	lines := make(chan string, 256)
	scanDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		scanDone <- sc.Err()
		close(lines)
	}()

	var seqs []uint64
	take := func(line string, ok bool) {
		if !ok {
			t.Fatalf("round %d: child stopped writing before it was killed; stderr:\n%s", round, stderr.String())
		}
		seq, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("round %d: child printed %q, not a seq; stderr:\n%s", round, line, stderr.String())
		}
		seqs = append(seqs, seq)
	}

	timeout := time.After(15 * time.Second)
	for len(seqs) < minCommits {
		select {
		case line, ok := <-lines:
			take(line, ok)
		case <-timeout:
			t.Fatalf("round %d: child reported %d commits in 15s; stderr:\n%s", round, len(seqs), stderr.String())
		}
	}
	extra := time.After(wait)
more:
	for {
		select {
		case line, ok := <-lines:
			take(line, ok)
		case <-extra:
			break more
		}
	}
	// The timer above fires when the runtime wakes up, which is mostly right
	// after the child printed a line, so on its own it kills the child at the
	// start of a commit nearly every time. A busy wait of up to a millisecond,
	// a few commits long, spreads the kill over every step of a commit,
	// including the one after the meta page is written but before the seq is
	// printed. The scanner goroutine goes on reading meanwhile.
	for spin := time.Now().Add(time.Duration(rand.IntN(1000)) * time.Microsecond); time.Now().Before(spin); {
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("round %d: kill: %v", round, err)
	}
	// Everything the child wrote before dying is still in the pipe: read it
	// to EOF so that the last reported seq is known exactly.
	for line := range lines {
		take(line, true)
	}
	if err := <-scanDone; err != nil {
		t.Fatalf("round %d: reading child output: %v", round, err)
	}
	err = cmd.Wait()
	waited = true
	ran := time.Since(began)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("round %d: child ended with %v, want killed by SIGKILL", round, err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended with %v, want killed by SIGKILL; stderr:\n%s", round, err, stderr.String())
	}
	return seqs, ran
}
