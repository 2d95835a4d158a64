package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
)

// Suite is the Debian release of the lab's nodes.
const Suite = "bookworm"

// BasePackages is what debootstrap installs on top of minbase: the real
// services a small office server runs.
var BasePackages = []string{
	"systemd", "systemd-sysv", "dbus", "iproute2", "ca-certificates",
	"nginx-light", "postfix", "dovecot-imapd", "postgresql", "mariadb-server",
	"samba", "openssh-server",
}

// baseTweaksVersion names the set of changes tweakBase makes. Raising it
// re-applies them to a cached base without running debootstrap again.
const baseTweaksVersion = "4"

// HostSources lists where the host's Debian mirror is read from.
var HostSources = []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"}

func (l *Lab) baseDir() string { return filepath.Join(l.opt.CacheDir, "base") }

func baseFingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "suite=%s\nvariant=minbase\npackages=%s\n", Suite, strings.Join(BasePackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (l *Lab) stampPath() string  { return filepath.Join(l.opt.CacheDir, "base.stamp") }
func (l *Lab) tweaksPath() string { return filepath.Join(l.opt.CacheDir, "base.tweaks") }

func readStamp(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// debootstrapped tells whether the cached base holds what debootstrap
// would make with this binary's package list.
func (l *Lab) debootstrapped() bool {
	if _, err := os.Stat(filepath.Join(l.baseDir(), "usr/sbin/nginx")); err != nil {
		return false
	}
	return readStamp(l.stampPath()) == baseFingerprint()
}

// BaseReady tells whether the cached base matches what this binary wants.
func (l *Lab) BaseReady() bool {
	return l.debootstrapped() && readStamp(l.tweaksPath()) == baseTweaksVersion
}

// EnsureBase builds the base root filesystem once; later calls return at once.
func (l *Lab) EnsureBase(ctx context.Context) error {
	if l.BaseReady() {
		return nil
	}
	if l.debootstrapped() {
		if l.inUse() {
			return fmt.Errorf("the cached base %s needs an update but a lab still uses it: run 'sentry-lab down' first", l.baseDir())
		}
		l.logf("updating the cached base (tweaks %s -> %s)", readStamp(l.tweaksPath()), baseTweaksVersion)
		if err := tweakBase(l.baseDir()); err != nil {
			return fmt.Errorf("prepare base: %w", err)
		}
		return atomicfile.Write(l.tweaksPath(), []byte(baseTweaksVersion+"\n"), 0o644)
	}
	if _, err := exec.LookPath(DebootstrapC); err != nil {
		return fmt.Errorf("building the lab base needs debootstrap: apt-get install -y debootstrap systemd-container iproute2")
	}
	mirror := l.opt.Mirror
	if mirror == "" {
		var err error
		if mirror, err = hostMirror(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.opt.CacheDir, 0o755); err != nil {
		return err
	}
	if l.inUse() {
		return fmt.Errorf("the cached base %s is out of date but a lab still uses it: run 'sentry-lab down' first", l.baseDir())
	}
	tmp := filepath.Join(l.opt.CacheDir, "base.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	start := time.Now()
	l.logf("building the base root filesystem (Debian %s, once; cached in %s) from %s", Suite, l.opt.CacheDir, mirror)
	logPath := filepath.Join(l.opt.CacheDir, "debootstrap.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, DebootstrapC, "--variant=minbase",
		"--include="+strings.Join(BasePackages, ","), Suite, tmp, mirror)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap failed (%v): see %s", err, logPath)
	}
	if err := tweakBase(tmp); err != nil {
		return fmt.Errorf("prepare base: %w", err)
	}
	old := filepath.Join(l.opt.CacheDir, "base.old")
	os.RemoveAll(old)
	if _, err := os.Stat(l.baseDir()); err == nil {
		if err := os.Rename(l.baseDir(), old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, l.baseDir()); err != nil {
		return err
	}
	os.RemoveAll(old)
	if err := atomicfile.Write(l.stampPath(), []byte(baseFingerprint()+"\n"), 0o644); err != nil {
		return err
	}
	if err := atomicfile.Write(l.tweaksPath(), []byte(baseTweaksVersion+"\n"), 0o644); err != nil {
		return err
	}
	l.logf("base built in %s", time.Since(start).Round(time.Second))
	return nil
}

// inUse tells whether any disk set of any lab is mounted on the base.
func (l *Lab) inUse() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "lowerdir="+l.baseDir()+",") || strings.Contains(string(b), "lowerdir="+l.baseDir()+" ")
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
func hostMirror() (string, error) {
	for _, p := range HostSources {
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
	return "", fmt.Errorf("no Debian mirror found in %s: give one with --mirror", strings.Join(HostSources, " or "))
}
