package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
)

// Suite is the Debian release of the lab's nodes.
const Suite = "bookworm"

// DefaultBasePackages is what debootstrap installs on top of minbase: the
// real services a small office server runs, and restic (the sentry
// package recommends it: the backup probe and the weekly restore test).
func DefaultBasePackages() []string {
	return []string{
		"systemd", "systemd-sysv", "dbus", "iproute2", "ca-certificates",
		"nginx-light", "postfix", "dovecot-imapd", "postgresql", "mariadb-server",
		"samba", "openssh-server", "restic",
	}
}

// baseTweaksVersion names the set of changes tweakBase makes. Raising it
// re-applies them to a cached base without running debootstrap again.
const baseTweaksVersion = "4"

// DefaultHostSources lists where the host's Debian mirror is read from.
func DefaultHostSources() []string {
	return []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"}
}

// baseCache is the base root filesystem every disk set is an overlay on:
// built once with debootstrap under cacheDir, and stamped with what it
// was built from.
type baseCache struct {
	cacheDir string
	mirror   string   // "" reads the host's sources
	packages []string // installed on top of minbase
	sources  []string // the host's apt sources
	log      logFunc
	prog     *progress
}

func (b *baseCache) dir() string { return filepath.Join(b.cacheDir, "base") }

func baseFingerprint(packages []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "suite=%s\nvariant=minbase\npackages=%s\n", Suite, strings.Join(packages, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (b *baseCache) stampPath() string  { return filepath.Join(b.cacheDir, "base.stamp") }
func (b *baseCache) tweaksPath() string { return filepath.Join(b.cacheDir, "base.tweaks") }

func readStamp(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// debootstrapped tells whether the cached base holds what debootstrap
// would make with this binary's package list.
func (b *baseCache) debootstrapped() bool {
	if _, err := os.Stat(filepath.Join(b.dir(), "usr/sbin/nginx")); err != nil {
		return false
	}
	return readStamp(b.stampPath()) == baseFingerprint(b.packages)
}

// ready tells whether the cached base matches what this binary wants.
func (b *baseCache) ready() bool {
	return b.debootstrapped() && readStamp(b.tweaksPath()) == baseTweaksVersion
}

// ensure builds the base root filesystem once; later calls return at once.
func (b *baseCache) ensure(ctx context.Context) error {
	if b.ready() {
		return nil
	}
	if b.debootstrapped() {
		if b.inUse() {
			return fmt.Errorf("the cached base %s needs an update but a lab still uses it: run 'sentry-lab down' first", b.dir())
		}
		b.log("updating the cached base (tweaks %s -> %s)", readStamp(b.tweaksPath()), baseTweaksVersion)
		if err := tweakBase(b.dir()); err != nil {
			return fmt.Errorf("prepare base: %w", err)
		}
		return atomicfile.Write(b.tweaksPath(), []byte(baseTweaksVersion+"\n"), 0o644)
	}
	if _, err := exec.LookPath(DebootstrapC); err != nil {
		return fmt.Errorf("building the lab base needs debootstrap: apt-get install -y debootstrap systemd-container iproute2")
	}
	mirror := b.mirror
	if mirror == "" {
		var err error
		if mirror, err = hostMirror(b.sources); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(b.cacheDir, 0o755); err != nil {
		return err
	}
	if b.inUse() {
		return fmt.Errorf("the cached base %s is out of date but a lab still uses it: run 'sentry-lab down' first", b.dir())
	}
	tmp := filepath.Join(b.cacheDir, "base.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	start := time.Now()
	b.log("building the base root filesystem (Debian %s, once, a few minutes; cached in %s) from %s", Suite, b.cacheDir, mirror)
	logPath := filepath.Join(b.cacheDir, "debootstrap.log")
	if err := b.debootstrap(ctx, tmp, mirror, logPath); err != nil {
		return err
	}
	task := b.prog.task("base")
	task.step("preparing the base for the lab", "")
	err := tweakBase(tmp)
	task.done()
	if err != nil {
		return fmt.Errorf("prepare base: %w", err)
	}
	old := filepath.Join(b.cacheDir, "base.old")
	os.RemoveAll(old)
	if _, err := os.Stat(b.dir()); err == nil {
		if err := os.Rename(b.dir(), old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, b.dir()); err != nil {
		return err
	}
	os.RemoveAll(old)
	if err := atomicfile.Write(b.stampPath(), []byte(baseFingerprint(b.packages)+"\n"), 0o644); err != nil {
		return err
	}
	if err := atomicfile.Write(b.tweaksPath(), []byte(baseTweaksVersion+"\n"), 0o644); err != nil {
		return err
	}
	b.log("base built in %s", time.Since(start).Round(time.Second))
	return nil
}

// debootstrap runs debootstrap into dir, its output kept in logPath and
// shown as progress (the step, packages done of the total, the time).
func (b *baseCache) debootstrap(ctx context.Context, dir, mirror, logPath string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, DebootstrapC, "--variant=minbase",
		"--include="+strings.Join(b.packages, ","), Suite, dir, mirror)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	// Its output goes through a pipe now: when debootstrap is stopped
	// (Ctrl-C), a child of it that still holds the pipe must not keep
	// Run waiting.
	cmd.WaitDelay = 10 * time.Second
	task := b.prog.task("base")
	parsed := make(chan *debootstrapProgress, 1)
	go func() {
		dp := newDebootstrapProgress()
		sc := bufio.NewScanner(io.TeeReader(pr, logf))
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if dp.Line(sc.Text()) {
				task.step(dp.Step(), dp.Detail())
			}
		}
		io.Copy(logf, pr) // a line too long for the scanner: keep the log whole
		parsed <- dp
	}()
	err = cmd.Run()
	pw.Close()
	dp := <-parsed
	task.done()
	if err != nil {
		if msg := dp.Error(); msg != "" {
			return fmt.Errorf("debootstrap failed (%v): %s; see %s", err, msg, logPath)
		}
		return fmt.Errorf("debootstrap failed (%v): see %s", err, logPath)
	}
	return nil
}

// inUse tells whether any disk set of any lab is mounted on the base.
func (b *baseCache) inUse() bool {
	m, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	return strings.Contains(string(m), "lowerdir="+b.dir()+",") || strings.Contains(string(m), "lowerdir="+b.dir()+" ")
}

// tweakBase makes the Debian defaults fit a lab node. Each change is what an
// administrator would do on a fresh install; none of it is Sentry itself.
func tweakBase(root string) error {
	link := func(target, name string) error {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p)
		return os.Symlink(target, p)
	}
	// systemd-networkd applies the disk set's .network files.
	if err := link("/lib/systemd/system/systemd-networkd.service", "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"); err != nil {
		return err
	}
	if err := link("/lib/systemd/system/systemd-networkd.socket", "etc/systemd/system/sockets.target.wants/systemd-networkd.socket"); err != nil {
		return err
	}
	// nmbd (NetBIOS names) waits forever for an IPv4 interface and holds
	// smbd back with it; SMB over TCP 445 does not need it.
	if err := link("/dev/null", "etc/systemd/system/nmbd.service"); err != nil {
		return err
	}
	// A unit that hangs on stop (smbd was seen to) must not hold a power-off
	// for systemd's default 90 s.
	if err := os.MkdirAll(filepath.Join(root, "etc/systemd/system.conf.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system.conf.d/50-lab.conf"),
		[]byte("# sentry lab: bound each unit's stop so a node powers off promptly.\n[Manager]\nDefaultTimeoutStopSec=15s\n"), 0o644); err != nil {
		return err
	}
	// A persistent journal, so a node's earlier boots can be read.
	if err := os.MkdirAll(filepath.Join(root, "var/log/journal"), 0o2755); err != nil {
		return err
	}
	// Postfix got the build host's name at install time; let it use the node's.
	mc := filepath.Join(root, "etc/postfix/main.cf")
	b, err := os.ReadFile(mc)
	if err != nil {
		return err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "myhostname") {
			continue
		}
		out = append(out, line)
	}
	if err := os.WriteFile(mc, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		return err
	}
	// Each disk set gets its own identity when it is made.
	for _, g := range []string{"etc/ssh/ssh_host_*"} {
		ms, _ := filepath.Glob(filepath.Join(root, g))
		for _, m := range ms {
			os.Remove(m)
		}
	}
	return os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444)
}

// hostMirror reads the Debian mirror the host's apt uses.
func hostMirror(sources []string) (string, error) {
	for _, p := range sources {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		var uris []string
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "URIs:"):
				uris = append(uris, strings.Fields(strings.TrimPrefix(line, "URIs:"))...)
			case strings.HasPrefix(line, "deb ") && !strings.Contains(line, "security"):
				fs := strings.Fields(line)
				for _, fld := range fs[1:] {
					if strings.Contains(fld, "://") {
						uris = append(uris, fld)
						break
					}
				}
			}
		}
		f.Close()
		for _, u := range uris {
			if !strings.Contains(u, "security") {
				return u, nil
			}
		}
	}
	return "", fmt.Errorf("no Debian mirror found in %s: give one with --mirror", strings.Join(sources, " or "))
}
