package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// testVersion is the version the test packages (not this checkout's: the
// test does not depend on the repository's history).
const testVersion = "0.1.0+git20270101.5.abcdef0"

func repoTop(t *testing.T) string {
	t.Helper()
	top, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed", c)
		}
	}
}

func cmdOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// buildPackage builds the sentry binary as make deb does and packages it
// into a temporary folder; it returns the package's path.
func buildPackage(t *testing.T) string {
	t.Helper()
	need(t, "dpkg-deb")
	top := repoTop(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "sentry")
	start := time.Now()
	cmd := exec.Command(goCmd(), "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion, "-o", bin, "./sentry")
	cmd.Dir = top
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("go build: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	deb, err := Build(Options{Repo: top, Binary: bin, Version: testVersion, OutDir: filepath.Join(dir, "dist"),
		MTime: time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC), Commit: "abcdef0", Compression: "none"})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Logf("package: %s", time.Since(start).Round(time.Millisecond))
	if filepath.Base(deb) != "sentry_"+testVersion+"_amd64.deb" {
		t.Errorf("package file %s, want sentry_%s_amd64.deb", filepath.Base(deb), testVersion)
	}
	return deb
}

// entry is a line of dpkg-deb -c.
type entry struct {
	mode, owner, link string
}

// listing parses dpkg-deb -c: path (without ./, directories with a
// trailing /) to mode, owner and link target.
func listing(t *testing.T, deb string) map[string]entry {
	t.Helper()
	line := regexp.MustCompile(`^(\S+) (\S+)\s+\d+ \S+ \S+ \./(\S*?)(?: -> (\S+))?$`)
	m := map[string]entry{}
	for _, l := range strings.Split(strings.TrimSpace(cmdOut(t, "dpkg-deb", "-c", deb)), "\n") {
		f := line.FindStringSubmatch(l)
		if f == nil {
			t.Fatalf("dpkg-deb -c: cannot read %q", l)
		}
		if f[3] == "" {
			continue // ./
		}
		m[f[3]] = entry{mode: f[1], owner: f[2], link: f[4]}
	}
	return m
}

func TestDebPackage(t *testing.T) {
	deb := buildPackage(t)
	top := repoTop(t)

	// The control fields.
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Section", "Priority", "Maintainer", "Homepage", "Depends", "Recommends", "Description"} {
		fields[f] = strings.TrimSpace(cmdOut(t, "dpkg-deb", "-f", deb, f))
	}
	for f, want := range map[string]string{
		"Package": "sentry", "Version": testVersion, "Architecture": "amd64",
		"Section": "admin", "Priority": "optional",
		"Depends": "systemd, apt, gpgv, passwd", "Recommends": "smartmontools, ledmon, restic",
	} {
		if fields[f] != want {
			t.Errorf("%s: %q, want %q", f, fields[f], want)
		}
	}
	for _, f := range []string{"Maintainer", "Homepage"} {
		if fields[f] == "" {
			t.Errorf("no %s", f)
		}
	}
	if d := fields["Description"]; !strings.HasPrefix(d, "keep a cold-standby pair") || !strings.Contains(d, "\n .\n") {
		t.Errorf("Description: %q", d)
	}

	// The files, their modes and owners.
	files := listing(t, deb)
	want := map[string]string{
		"usr/bin/sentry": "-rwxr-xr-x",
		"lib/systemd/system/sentry-agent.service":         "-rw-r--r--",
		"lib/systemd/system/sentry-bootcheck.service":     "-rw-r--r--",
		"lib/systemd/system/sentry-role.target":           "-rw-r--r--",
		"lib/systemd/system/sentry-report.service":        "-rw-r--r--",
		"lib/systemd/system/sentry-report.timer":          "-rw-r--r--",
		"etc/sentry/sentry.toml":                          "-rw-r--r--",
		"usr/share/bash-completion/completions/sentry":    "-rw-r--r--",
		"usr/share/zsh/vendor-completions/_sentry":        "-rw-r--r--",
		"usr/share/fish/vendor_completions.d/sentry.fish": "-rw-r--r--",
		"usr/share/doc/sentry/copyright":                  "-rw-r--r--",
		"usr/share/doc/sentry/changelog.gz":               "-rw-r--r--",
		"usr/share/doc/sentry/third-party-licenses.gz":    "-rw-r--r--",
		"usr/share/lintian/overrides/sentry":              "-rw-r--r--",
	}
	docs, _ := filepath.Glob(filepath.Join(top, "docs", "*.md"))
	for _, p := range append(docs, filepath.Join(top, "README.md")) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		name := "usr/share/doc/sentry/" + filepath.Base(p)
		if fi.Size() > 4096 {
			name += ".gz"
		}
		want[name] = "-rw-r--r--"
	}
	pages := 0
	for p, e := range files {
		if e.owner != "root/root" {
			t.Errorf("%s: owner %s, want root/root", p, e.owner)
		}
		switch {
		case strings.HasSuffix(p, "/"):
			if e.mode != "drwxr-xr-x" {
				t.Errorf("%s: mode %s, want drwxr-xr-x", p, e.mode)
			}
			if strings.HasPrefix(p, "var/") || strings.HasPrefix(p, "run/") {
				t.Errorf("the package owns %s: its state is never dpkg's", p)
			}
		case strings.HasPrefix(p, "usr/share/man/man1/") && strings.HasSuffix(p, ".1.gz"):
			pages++
			if e.mode != "-rw-r--r--" {
				t.Errorf("%s: mode %s, want -rw-r--r--", p, e.mode)
			}
		default:
			m, ok := want[p]
			if !ok {
				t.Errorf("unexpected file %s (%s)", p, e.mode)
				continue
			}
			if e.mode != m {
				t.Errorf("%s: mode %s, want %s", p, e.mode, m)
			}
			delete(want, p)
		}
	}
	for p := range want {
		t.Errorf("missing file %s", p)
	}
	if pages < 20 {
		t.Errorf("%d man pages, want one for each command", pages)
	}

	// The control archive: the conffile and the maintainer scripts.
	ctrl := t.TempDir()
	cmdOut(t, "dpkg-deb", "-e", deb, ctrl)
	if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); string(b) != "/etc/sentry/sentry.toml\n" {
		t.Errorf("conffiles: %q, want /etc/sentry/sentry.toml", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctrl, s))
		if err != nil {
			t.Errorf("no %s: %v", s, err)
			continue
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", s, fi.Mode())
		}
		got, _ := os.ReadFile(filepath.Join(ctrl, s))
		src, _ := os.ReadFile(filepath.Join(top, "packaging", s))
		if !bytes.Equal(got, src) {
			t.Errorf("%s differs from packaging/%s", s, s)
		}
	}
	if _, err := os.Stat(filepath.Join(ctrl, "preinst")); err == nil {
		t.Errorf("a preinst, which the package does not have")
	}

	// The files themselves.
	root := t.TempDir()
	cmdOut(t, "dpkg-deb", "-x", deb, root)
	if v := cmdOut(t, filepath.Join(root, "usr/bin/sentry"), "version"); !strings.HasPrefix(v, "sentry "+testVersion+" ") {
		t.Errorf("sentry version: %q, want sentry %s", v, testVersion)
	}
	agentUnit := strings.ReplaceAll(cmdOut(t, filepath.Join(root, "usr/bin/sentry"), "agent", "unit"), "/usr/local/bin/sentry", "/usr/bin/sentry")
	execStart := regexp.MustCompile(`(?m)^ExecStart=(\S+)`)
	docMan := regexp.MustCompile(`man:([a-z0-9-]+)\(1\)`)
	for _, u := range append(append([]string{}, Units...), ReportUnits...) {
		b, err := os.ReadFile(filepath.Join(root, "lib/systemd/system", u))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.Contains(text, "/usr/local/bin") {
			t.Errorf("%s names /usr/local/bin", u)
		}
		m := execStart.FindAllStringSubmatch(text, -1)
		if strings.HasSuffix(u, ".service") && len(m) != 1 {
			t.Errorf("%s: %d ExecStart lines, want 1", u, len(m))
		}
		for _, x := range m {
			if x[1] != "/usr/bin/sentry" {
				t.Errorf("%s: ExecStart runs %s, want /usr/bin/sentry", u, x[1])
			}
		}
		for _, d := range docMan.FindAllStringSubmatch(text, -1) {
			if _, ok := files["usr/share/man/man1/"+d[1]+".1.gz"]; !ok {
				t.Errorf("%s: Documentation names %s(1), which the package has no page for", u, d[1])
			}
		}
		switch {
		case u == "sentry-report.service":
			if strings.Contains(text, "[Install]") {
				t.Errorf("%s has an [Install] section: its timer starts it", u)
			}
		case u == "sentry-report.timer":
			if !strings.Contains(text, "WantedBy=timers.target") || !strings.Contains(text, "Persistent=true") || !strings.Contains(text, "RandomizedDelaySec=") {
				t.Errorf("%s: not wanted by timers.target, or not persistent with a randomized delay:\n%s", u, text)
			}
		case !strings.Contains(text, "WantedBy=multi-user.target"):
			t.Errorf("%s is not wanted by multi-user.target", u)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/sentry-agent.service")); string(b) != agentUnit {
		t.Errorf("sentry-agent.service is not what `sentry agent unit` prints (with /usr/bin/sentry):\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/sentry-bootcheck.service")); !strings.Contains(string(b), "ExecStart=/usr/bin/sentry bootcheck run --budget") {
		t.Errorf("sentry-bootcheck.service does not run the boot check:\n%s", b)
	}
	conf, _ := os.ReadFile(filepath.Join(root, "etc/sentry/sentry.toml"))
	src, _ := os.ReadFile(filepath.Join(top, "packaging/sentry.toml"))
	if !bytes.Equal(conf, src) {
		t.Errorf("/etc/sentry/sentry.toml is not packaging/sentry.toml")
	}
	var gzipped []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".gz") {
			gzipped = append(gzipped, p)
		}
		return nil
	})
	sort.Strings(gzipped)
	for _, p := range gzipped {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := gzip.NewReader(f)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if r.Name != "" || !r.ModTime.IsZero() {
			t.Errorf("%s: gzip header has a name %q or time %v (gzip -n has neither)", p, r.Name, r.ModTime)
		}
	}
	page, _ := os.ReadFile(filepath.Join(root, "usr/share/man/man1/sentry.1.gz"))
	if page, _ = gunzip(page); !regexp.MustCompile(`(?m)^\.TH SENTRY 1 "2027-01-01" `).Match(page) {
		t.Errorf("sentry.1 is not dated as the commit (2027-01-01):\n%.200s", page)
	}
	cl, err := os.ReadFile(filepath.Join(root, "usr/share/doc/sentry/changelog.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if cl, err = gunzip(cl); err != nil || !strings.HasPrefix(string(cl), "sentry ("+testVersion+") unstable; urgency=medium\n") {
		t.Errorf("changelog.gz (%v):\n%s", err, cl)
	}
	if cr, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/sentry/copyright")); !strings.HasPrefix(string(cr), "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Errorf("copyright is not machine-readable:\n%s", cr)
	}
	notices, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/sentry/third-party-licenses.gz"))
	notices, _ = gunzip(notices)
	for _, m := range []string{"github.com/spf13/cobra", "Go go1."} {
		if !bytes.Contains(notices, []byte("==> "+m)) {
			t.Errorf("third-party-licenses has no section for %s", m)
		}
	}

	// systemd's own check of the units, in the package's tree (with the
	// host's units, which they order themselves against, and kill).
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the units are not verified")
		return
	}
	hostUnits := "/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(hostUnits, "sysinit.target")); err != nil {
		t.Logf("no systemd units on this host (%v): the units are not verified", err)
		return
	}
	sys := filepath.Join(root, "usr/lib/systemd/system")
	os.MkdirAll(sys, 0o755)
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	cmdOut(t, "cp", "-a", hostUnits+"/.", sys)
	cmdOut(t, "cp", "/bin/kill", filepath.Join(root, "bin/kill"))
	args := []string{"verify", "--man=no", "--root=" + root}
	for _, u := range append(append([]string{}, Units...), ReportUnits...) {
		args = append(args, "/lib/systemd/system/"+u)
	}
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
