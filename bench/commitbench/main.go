// Command commitbench measures a configuration commit after a one-file
// change, and a first snapshot, on a generated /etc-like tree of 3,000 files
// (17 MB): sentry's synchronizer against plain git and etckeeper (git
// backend), all in the same run, and prints the ratios.
//
//	go run ./bench/commitbench            (make bench-commit)
//
// A first snapshot is taken -first-rounds times by each tool (5 by
// default), each time on a fresh copy of the tree into a new repository,
// the tools taking turns (the order alternates from round to round), and
// the median is shown: one run alone swings with the load of a shared
// machine. It counts from making the repository (sentry's OpenRepo, git
// init, etckeeper init) to the end of the commit; sentry's is durable then
// (its pack, the pack's index and the ref fsynced), while git fsyncs no
// loose object or ref by default. Then it prints a verdict on the goal of
// issue 19, in the form
//
//	goal: first snapshot at most 1.0x plain git: met (0.7x)
//
// and exits 0 whatever it says, unless -require-goal is given (then 2 when
// the goal is not met). -cpuprofile profiles sentry's side (the only one
// in this process).
//
// etckeeper is taken from Debian's package without installing it (apt-get
// download, dpkg-deb -x), so the host's /etc is left alone.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/synchronizer"
)

func main() {
	files := flag.Int("files", 3000, "files in the generated tree")
	size := flag.Int("mb", 17, "total size of the tree in MB")
	rounds := flag.Int("rounds", 15, "one-file commits measured per tool (the median is shown)")
	firstRounds := flag.Int("first-rounds", 5, "first snapshots measured per tool, the tools taking turns (the median is shown)")
	goal := flag.Float64("goal", 1.0, "largest ratio of sentry's first snapshot to plain git's that meets the goal")
	require := flag.Bool("require-goal", false, "exit 2 when the first-snapshot goal is not met")
	cache := flag.String("cache", "/var/cache/sentry-bench", "where etckeeper is unpacked")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of sentry's side (the only one in this process) to this file")
	flag.Parse()
	if *rounds < 1 || *firstRounds < 1 {
		fmt.Fprintln(os.Stderr, "commitbench: -rounds and -first-rounds must be at least 1")
		os.Exit(1)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "commitbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
	}
	met, err := run(*files, *size, *rounds, *firstRounds, *goal, *cache)
	pprof.StopCPUProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "commitbench:", err)
		os.Exit(1)
	}
	if !met && *require {
		os.Exit(2)
	}
}

// generate writes an /etc-like tree: directories of a few dozen files each,
// text of varied sizes summing to about mb megabytes.
func generate(root string, n, mb int) error {
	per := mb << 20 / n
	rng := rand.New(rand.NewPCG(1, 2))
	line := "option_%d = value %d  # a comment that makes the line look like configuration\n"
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, "etc", fmt.Sprintf("service%02d", i/100), fmt.Sprintf("conf%d.d", i%100/25))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		target := per/2 + rng.IntN(per)
		var b strings.Builder
		for j := 0; b.Len() < target; j++ {
			fmt.Fprintf(&b, line, j, rng.IntN(100000))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%04d.conf", i)), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyTree(src, dst string) error {
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func sh(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func etckeeper(cache string) (string, error) {
	bin := filepath.Join(cache, "etckeeper", "usr/bin/etckeeper")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	dir := filepath.Join(cache, "etckeeper")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := sh(dir, nil, "apt-get", "download", "etckeeper"); err != nil {
		return "", fmt.Errorf("%w (run apt-get update first?)", err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "etckeeper_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download etckeeper left no .deb in %s", dir)
	}
	if err := sh(dir, nil, "dpkg-deb", "-x", debs[0], dir); err != nil {
		return "", err
	}
	return bin, nil
}

func run(n, mb, rounds, firstRounds int, goal float64, cache string) (bool, error) {
	work, err := os.MkdirTemp("", "commitbench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)
	base := filepath.Join(work, "base")
	if err := generate(base, n, mb); err != nil {
		return false, err
	}
	git := []string{"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b"}
	edit := func(root string, i int) string {
		p := filepath.Join(root, "etc", fmt.Sprintf("service%02d", i%30), "conf1.d", fmt.Sprintf("file%04d.conf", i%30*100+30))
		f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0o644)
		fmt.Fprintf(f, "edited = %d\n", i)
		f.Close()
		return p
	}
	etck, etckErr := etckeeper(cache)
	if etckErr != nil {
		fmt.Fprintln(os.Stderr, "etckeeper not measured:", etckErr)
	}
	etckEnv := func() []string {
		return append(append([]string(nil), git...), "ETCKEEPER_CONF_DIR="+filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(etck))), "etc/etckeeper"))
	}

	// The first snapshot of each tool, in a folder of its own: a copy of
	// the tree (root/etc) and a repository. Each returns what the
	// one-file commits then go on with.
	type tool struct {
		name  string
		first func(dir string) (time.Duration, func(i int) error, error)
	}
	tools := []tool{
		{"sentry (one path known)", func(dir string) (time.Duration, func(int) error, error) {
			root := filepath.Join(dir, "tree")
			if err := copyTree(base, root); err != nil {
				return 0, nil, err
			}
			t0 := time.Now()
			r, err := synchronizer.OpenRepo(filepath.Join(dir, "sentry.git"), "bench", &synchronizer.Policy{Roots: []string{filepath.Join(root, "etc")}})
			if err != nil {
				return 0, nil, err
			}
			if err := r.ScanAll(); err != nil {
				return 0, nil, err
			}
			if c, err := r.Commit("first", time.Now()); err != nil || c == nil {
				return 0, nil, fmt.Errorf("sentry's first snapshot: %v", err)
			}
			d := time.Since(t0)
			// The watcher hands the changed path to Update; rounds
			// from 100 on: nothing says which path changed, a full
			// rescan.
			return d, func(i int) error {
				p := edit(root, i)
				if i >= 100 {
					if err := r.ScanAll(); err != nil {
						return err
					}
				} else if err := r.Update(p); err != nil {
					return err
				}
				c, err := r.Commit("edit", time.Now())
				if err != nil || c == nil {
					return fmt.Errorf("sentry commit %d: %v", i, err)
				}
				return nil
			}, nil
		}},
		{"git add -A && git commit", func(dir string) (time.Duration, func(int) error, error) {
			root := filepath.Join(dir, "tree")
			if err := copyTree(base, root); err != nil {
				return 0, nil, err
			}
			etc := filepath.Join(root, "etc")
			t0 := time.Now()
			if err := sh(etc, git, "git", "init", "-q"); err != nil {
				return 0, nil, err
			}
			if err := sh(etc, git, "sh", "-c", "git add -A && git commit -qm first"); err != nil {
				return 0, nil, err
			}
			return time.Since(t0), func(i int) error {
				edit(root, i)
				return sh(etc, git, "sh", "-c", "git add -A && git commit -qm edit")
			}, nil
		}},
	}
	if etckErr == nil {
		tools = append(tools, tool{"etckeeper commit", func(dir string) (time.Duration, func(int) error, error) {
			root := filepath.Join(dir, "tree")
			if err := copyTree(base, root); err != nil {
				return 0, nil, err
			}
			etc := filepath.Join(root, "etc")
			t0 := time.Now()
			if err := sh(etc, etckEnv(), etck, "init", "-d", etc); err != nil {
				return 0, nil, err
			}
			if err := sh(etc, etckEnv(), etck, "commit", "-d", etc, "first"); err != nil {
				return 0, nil, err
			}
			return time.Since(t0), func(i int) error {
				edit(root, i)
				return sh(etc, etckEnv(), etck, "commit", "-d", etc, "edit")
			}, nil
		}})
	}

	// First snapshots: the tools take turns; round 0's repositories are
	// kept for the one-file commits.
	firsts := make([][]time.Duration, len(tools))
	next := make([]func(int) error, len(tools))
	for round := 0; round < firstRounds; round++ {
		for k := range tools {
			if round%2 == 1 {
				k = len(tools) - 1 - k
			}
			dir := filepath.Join(work, fmt.Sprintf("tool%d-round%d", k, round))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return false, err
			}
			d, commit, err := tools[k].first(dir)
			if err != nil {
				return false, fmt.Errorf("%s, first snapshot: %w", tools[k].name, err)
			}
			firsts[k] = append(firsts[k], d)
			if round == 0 {
				next[k] = commit
			} else if err := os.RemoveAll(dir); err != nil {
				return false, err
			}
		}
	}

	type result struct {
		name          string
		first, commit time.Duration
	}
	var results []result
	for k, t := range tools {
		var ds []time.Duration
		for i := 0; i < rounds; i++ {
			tt := time.Now()
			if err := next[k](i); err != nil {
				return false, fmt.Errorf("%s: %w", t.name, err)
			}
			ds = append(ds, time.Since(tt))
		}
		first := median(append([]time.Duration(nil), firsts[k]...))
		results = append(results, result{t.name, first, median(ds)})
		if k == 0 {
			// And when nothing says which path changed: a full rescan.
			ds = nil
			for i := 0; i < rounds; i++ {
				tt := time.Now()
				if err := next[k](100 + i); err != nil {
					return false, fmt.Errorf("%s: %w", t.name, err)
				}
				ds = append(ds, time.Since(tt))
			}
			results = append(results, result{"sentry (full rescan)", first, median(ds)})
		}
	}

	ref := results[0].commit
	var gitRef, gitFirst time.Duration
	for _, r := range results {
		if strings.HasPrefix(r.name, "git") {
			gitRef, gitFirst = r.commit, r.first
		}
	}
	fmt.Printf("tree: %d files, %d MB; median of %d first snapshots and of %d one-file commits\n\n", n, mb, firstRounds, rounds)
	fmt.Printf("%-28s %14s %12s %16s %14s\n", "tool", "first snapshot", "one-file", "x sentry", "sentry / it")
	for _, r := range results {
		fmt.Printf("%-28s %14s %12s %15.1fx %13.2fx\n", r.name, r.first.Round(time.Millisecond), r.commit.Round(100*time.Microsecond),
			float64(r.commit)/float64(ref), float64(ref)/float64(r.commit))
	}
	fmt.Println()
	for k, t := range tools {
		var all []string
		for _, d := range firsts[k] {
			all = append(all, d.Round(time.Millisecond).String())
		}
		fmt.Printf("first snapshots, %s: %s\n", t.name, strings.Join(all, " "))
	}
	fmt.Printf("\nsentry's one-file commit is %.2fx plain git's (target: at most 0.5x)\n", float64(ref)/float64(gitRef))
	ratio := float64(results[0].first) / float64(gitFirst)
	fmt.Printf("sentry's first snapshot is %.2fx plain git's (target: at most %.1fx)\n", ratio, goal)
	line, met := verdict(goal, ratio)
	fmt.Println(line)
	return met, nil
}

// verdict is the line that holds the first-snapshot ratio (sentry's time
// over plain git's) against the goal, and whether the goal is met.
func verdict(goal, ratio float64) (string, bool) {
	head := fmt.Sprintf("goal: first snapshot at most %.1fx plain git: ", goal)
	if ratio <= goal {
		return head + fmt.Sprintf("met (%.2fx)", ratio), true
	}
	return head + fmt.Sprintf("NOT met (%.2fx)", ratio), false
}
