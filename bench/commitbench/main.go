// Command commitbench measures a configuration commit after a one-file
// change, and a first snapshot, on a generated /etc-like tree of 3,000 files
// (17 MB): sentry's synchronizer against plain git and etckeeper (git
// backend), all in the same run, and prints the ratios.
//
//	go run ./bench/commitbench            (make bench-commit)
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
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/synchronizer"
)

func main() {
	files := flag.Int("files", 3000, "files in the generated tree")
	size := flag.Int("mb", 17, "total size of the tree in MB")
	rounds := flag.Int("rounds", 15, "one-file commits measured per tool (the median is shown)")
	cache := flag.String("cache", "/var/cache/sentry-bench", "where etckeeper is unpacked")
	flag.Parse()
	if err := run(*files, *size, *rounds, *cache); err != nil {
		fmt.Fprintln(os.Stderr, "commitbench:", err)
		os.Exit(1)
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
	return exec.Command("cp", "-a", src, dst).Run()
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

func run(n, mb, rounds int, cache string) error {
	work, err := os.MkdirTemp("", "commitbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	base := filepath.Join(work, "base")
	if err := generate(base, n, mb); err != nil {
		return err
	}
	git := []string{"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b"}
	edit := func(root string, i int) string {
		p := filepath.Join(root, "etc", fmt.Sprintf("service%02d", i%30), "conf1.d", fmt.Sprintf("file%04d.conf", i%30*100+30))
		f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0o644)
		fmt.Fprintf(f, "edited = %d\n", i)
		f.Close()
		return p
	}
	type result struct {
		name          string
		first, commit time.Duration
	}
	var results []result

	// sentry: the watcher hands the changed path to Update.
	{
		root := filepath.Join(work, "sentry")
		copyTree(base, root)
		r, err := synchronizer.OpenRepo(filepath.Join(work, "sentry.git"), "bench", &synchronizer.Policy{Roots: []string{filepath.Join(root, "etc")}})
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := r.ScanAll(); err != nil {
			return err
		}
		if _, err := r.Commit("first", time.Now()); err != nil {
			return err
		}
		first := time.Since(t0)
		var ds []time.Duration
		for i := 0; i < rounds; i++ {
			p := edit(root, i)
			t := time.Now()
			if err := r.Update(p); err != nil {
				return err
			}
			c, err := r.Commit("edit", time.Now())
			if err != nil || c == nil {
				return fmt.Errorf("sentry commit %d: %v", i, err)
			}
			ds = append(ds, time.Since(t))
		}
		results = append(results, result{"sentry (one path known)", first, median(ds)})
		// And when nothing says which path changed: a full rescan.
		ds = nil
		for i := 0; i < rounds; i++ {
			edit(root, i+100)
			t := time.Now()
			if err := r.ScanAll(); err != nil {
				return err
			}
			if _, err := r.Commit("edit", time.Now()); err != nil {
				return err
			}
			ds = append(ds, time.Since(t))
		}
		results = append(results, result{"sentry (full rescan)", first, median(ds)})
	}
	// plain git: git add -A && git commit.
	{
		root := filepath.Join(work, "git")
		copyTree(base, root)
		dir := filepath.Join(root, "etc")
		t0 := time.Now()
		if err := sh(dir, git, "git", "init", "-q"); err != nil {
			return err
		}
		if err := sh(dir, git, "sh", "-c", "git add -A && git commit -qm first"); err != nil {
			return err
		}
		first := time.Since(t0)
		var ds []time.Duration
		for i := 0; i < rounds; i++ {
			edit(root, i)
			t := time.Now()
			if err := sh(dir, git, "sh", "-c", "git add -A && git commit -qm edit"); err != nil {
				return err
			}
			ds = append(ds, time.Since(t))
		}
		results = append(results, result{"git add -A && git commit", first, median(ds)})
	}
	// etckeeper (git backend), from Debian's package.
	if bin, err := etckeeper(cache); err != nil {
		fmt.Fprintln(os.Stderr, "etckeeper not measured:", err)
	} else {
		root := filepath.Join(work, "etckeeper")
		copyTree(base, root)
		dir := filepath.Join(root, "etc")
		env := append(git, "ETCKEEPER_CONF_DIR="+filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(bin))), "etc/etckeeper"))
		t0 := time.Now()
		if err := sh(dir, env, bin, "init", "-d", dir); err != nil {
			return err
		}
		if err := sh(dir, env, bin, "commit", "-d", dir, "first"); err != nil {
			return err
		}
		first := time.Since(t0)
		var ds []time.Duration
		for i := 0; i < rounds; i++ {
			edit(root, i)
			t := time.Now()
			if err := sh(dir, env, bin, "commit", "-d", dir, "edit"); err != nil {
				return err
			}
			ds = append(ds, time.Since(t))
		}
		results = append(results, result{"etckeeper commit", first, median(ds)})
	}

	ref := results[0].commit
	gitRef := time.Duration(0)
	for _, r := range results {
		if strings.HasPrefix(r.name, "git") {
			gitRef = r.commit
		}
	}
	fmt.Printf("tree: %d files, %d MB; median of %d one-file commits\n\n", n, mb, rounds)
	fmt.Printf("%-28s %14s %12s %16s %14s\n", "tool", "first snapshot", "one-file", "x sentry", "sentry / it")
	for _, r := range results {
		fmt.Printf("%-28s %14s %12s %15.1fx %13.2fx\n", r.name, r.first.Round(time.Millisecond), r.commit.Round(100*time.Microsecond),
			float64(r.commit)/float64(ref), float64(ref)/float64(r.commit))
	}
	if gitRef > 0 {
		fmt.Printf("\nsentry's one-file commit is %.2fx plain git's (target: at most 0.5x)\n", float64(ref)/float64(gitRef))
	}
	return nil
}
