package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// The package's control fields. Maintainer and Homepage are placeholders
// until the project names its own.
const (
	PackageName = "sentry"
	Arch        = "amd64"
	Section     = "admin"
	Priority    = "optional"
	Maintainer  = "Sentry maintainers <sentry@example.org>"
	Homepage    = "https://github.com/sentryha/sentry"
	Description = `keep a cold-standby pair of servers ready for a disk-swap failover
Sentry keeps a primary and a secondary server in step (configuration,
packages, drivers), exercises every service on both, and decides at boot,
from the disks and the hardware, which role a node takes. Failover is
manual and cold: power both off, move the primary's disks into the other
machine, boot it.

This package ships the sentry command, its agent (sentry-agent.service),
the boot check (sentry-bootcheck.service) and the target of the role's
services (sentry-role.target).`
)

// Relations. The binary is static (CGO_ENABLED=0). At run time it talks to
// systemd (units, D-Bus, sd_notify), runs apt-get, apt-mark and dpkg (dpkg
// is Essential, so not named), gpgv (apt's signed indexes), and, from the
// verifier's canaries, useradd and chpasswd (passwd; the postinst's
// groupadd makes the group sentry with it). Git is not needed:
// the configuration repository is go-git, in the binary.
var (
	Depends    = []string{"systemd", "apt", "gpgv", "passwd"}
	Recommends = []string{"smartmontools", "ledmon", "restic"}
	Suggests   = []string{"initramfs-tools"}
)

// Where the package puts things.
const (
	BinPath      = "/usr/bin/sentry"
	UnitDir      = "/lib/systemd/system"
	ConfPath     = "/etc/sentry/sentry.toml"
	DocDir       = "/usr/share/doc/sentry"
	ManDir       = "/usr/share/man/man1"
	BashComp     = "/usr/share/bash-completion/completions/sentry"
	ZshComp      = "/usr/share/zsh/vendor-completions/_sentry"
	FishComp     = "/usr/share/fish/vendor_completions.d/sentry.fish"
	OverridePath = "/usr/share/lintian/overrides/sentry"
	// ChangelogName is the Debian changelog's name in DocDir.
	ChangelogName = "changelog.gz"
	// unitBinary is the path in the units as the binary prints them.
	unitBinary = "/usr/local/bin/sentry"
)

// Units are the unit files the package ships in UnitDir. The report's
// (ReportUnits) only when the binary prints them: the previous release,
// packaged by the rolling-upgrade test, has none.
var Units = []string{"sentry-agent.service", "sentry-bootcheck.service", "sentry-role.target"}

// ReportUnits are the weekly report's units, as `sentry agent unit NAME`
// prints them.
var ReportUnits = []string{"sentry-report.service", "sentry-report.timer"}

// Options say what to package.
type Options struct {
	// Repo is the repository's top folder: README.md, docs/*.md and
	// packaging/ are read from it.
	Repo string
	// Binary is the sentry binary to ship, built with the version.
	Binary string
	// Version is the package's version (VersionOf).
	Version string
	// MTime is the time of every file in the package (the commit's).
	MTime time.Time
	// OutDir gets sentry_VERSION_amd64.deb.
	OutDir string
	// Commit is the commit's short id, for the changelog ("" when unknown).
	Commit string
	// Compression is the data archive's: "" is gzip; the tests take
	// "none", since compress/flate under the race detector takes a minute
	// over the binary.
	Compression string
}

// FileName is the package's file name for version.
func FileName(version string) string {
	return fmt.Sprintf("%s_%s_%s.deb", PackageName, version, Arch)
}

// Build writes the package and returns its path.
func Build(o Options) (string, error) {
	if err := debVersion(o.Version); err != nil {
		return "", err
	}
	if o.MTime.IsZero() {
		o.MTime = time.Now()
	}
	o.MTime = o.MTime.UTC().Truncate(time.Second)
	work, err := os.MkdirTemp("", "sentry-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	contents, err := stage(o, work)
	if err != nil {
		return "", err
	}
	info := &nfpm.Info{
		Name:          PackageName,
		Arch:          Arch,
		Platform:      "linux",
		Version:       o.Version,
		VersionSchema: "none",
		Section:       Section,
		Priority:      Priority,
		Maintainer:    Maintainer,
		Homepage:      Homepage,
		Description:   Description,
		MTime:         o.MTime,
		Overridables: nfpm.Overridables{
			Depends:    Depends,
			Recommends: Recommends,
			Suggests:   Suggests,
			Contents:   contents,
			Umask:      0o022,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(o.Repo, "packaging/postinst"),
				PreRemove:   filepath.Join(o.Repo, "packaging/prerm"),
				PostRemove:  filepath.Join(o.Repo, "packaging/postrm"),
			},
			Deb: nfpm.Deb{Compression: cmp.Or(o.Compression, "gzip")},
		},
		DisableGlobbing: true,
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.OutDir, FileName(o.Version))
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := (&deb.Deb{}).Package(nfpm.WithDefaults(info), f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("package: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// stage writes what the package holds under work and lists it.
func stage(o Options, work string) (files.Contents, error) {
	var cs files.Contents
	add := func(src, dst string, mode os.FileMode) {
		cs = append(cs, &files.Content{Source: src, Destination: dst,
			FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root"}})
	}
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(work, "stage", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		return p, os.WriteFile(p, data, 0o644)
	}
	addData := func(dst string, data []byte, mode os.FileMode) error {
		p, err := write(strings.TrimPrefix(dst, "/"), data)
		if err != nil {
			return err
		}
		add(p, dst, mode)
		return nil
	}

	// The binary, built for the package's architecture.
	bi, err := buildinfo.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Go binary: %w", o.Binary, err)
	}
	for _, s := range bi.Settings {
		if s.Key == "GOARCH" && s.Value != Arch {
			return nil, fmt.Errorf("%s is built for %s, the package is %s", o.Binary, s.Value, Arch)
		}
	}
	add(o.Binary, BinPath, 0o755)

	// The units, as the binary writes them, running /usr/bin/sentry.
	units, err := unitFiles(o.Binary, work)
	if err != nil {
		return nil, err
	}
	for _, u := range append(append([]string{}, Units...), ReportUnits...) {
		if text, ok := units[u]; ok {
			if err := addData(UnitDir+"/"+u, []byte(text), 0o644); err != nil {
				return nil, err
			}
		}
	}

	// The configuration, a conffile.
	conf := filepath.Join(o.Repo, "packaging/sentry.toml")
	if _, err := os.Stat(conf); err != nil {
		return nil, err
	}
	cs = append(cs, &files.Content{Source: conf, Destination: ConfPath, Type: files.TypeConfig,
		FileInfo: &files.ContentFileInfo{Mode: 0o644, Owner: "root", Group: "root"}})

	// The man pages, gzipped.
	manSrc := filepath.Join(work, "man")
	if _, err := output(o.Binary, "man", "--dir", manSrc); err != nil {
		return nil, err
	}
	pages, err := filepath.Glob(filepath.Join(manSrc, "*.1"))
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("sentry man wrote no page into %s (%v)", manSrc, err)
	}
	sort.Strings(pages)
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		// The page's date is the commit's, not the build's: the same
		// commit makes the same package.
		b = manDate.ReplaceAll(b, []byte("${1}"+o.MTime.Format("2006-01-02")+"${2}"))
		if err := addData(ManDir+"/"+filepath.Base(p)+".gz", gz(b), 0o644); err != nil {
			return nil, err
		}
	}

	// The shell completions.
	for _, c := range []struct{ shell, dst string }{{"bash", BashComp}, {"zsh", ZshComp}, {"fish", FishComp}} {
		b, err := output(o.Binary, "completion", c.shell)
		if err != nil {
			return nil, err
		}
		if err := addData(c.dst, b, 0o644); err != nil {
			return nil, err
		}
	}

	// The documentation: README.md and docs/*.md, gzipped when over 4 KB
	// (Debian policy 12.3).
	docs, err := filepath.Glob(filepath.Join(o.Repo, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(docs)
	for _, p := range append([]string{filepath.Join(o.Repo, "README.md")}, docs...) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		dst := DocDir + "/" + filepath.Base(p)
		if len(b) > 4096 {
			b, dst = gz(b), dst+".gz"
		}
		if err := addData(dst, b, 0o644); err != nil {
			return nil, err
		}
	}

	// copyright, the licenses of what the binary is built from, the
	// changelog.
	cr, err := os.ReadFile(filepath.Join(o.Repo, "packaging/copyright"))
	if err != nil {
		return nil, err
	}
	if err := addData(DocDir+"/copyright", cr, 0o644); err != nil {
		return nil, err
	}
	notices, err := ThirdPartyNotices(o.Binary)
	if err != nil {
		return nil, err
	}
	if err := addData(DocDir+"/"+NoticesName+".gz", gz(notices), 0o644); err != nil {
		return nil, err
	}
	// The Debian changelog. The version has no Debian revision (the
	// project is its own packager: a native package), so policy 12.7 and
	// lintian name it changelog.gz, not changelog.Debian.gz.
	if err := addData(DocDir+"/"+ChangelogName, gz(Changelog(o)), 0o644); err != nil {
		return nil, err
	}

	// Lintian's overrides, each with its reason.
	if b, err := os.ReadFile(filepath.Join(o.Repo, "packaging/lintian-overrides")); err == nil {
		if err := addData(OverridePath, b, 0o644); err != nil {
			return nil, err
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return cs, nil
}

// unitFiles runs the binary for its unit files and returns them by name,
// with ExecStart (and every other mention of the binary) at BinPath:
// sentry-agent.service as `sentry agent unit` prints it, and
// sentry-bootcheck.service and sentry-role.target as `sentry bootcheck
// install --root` writes them (the role services' drop-ins it writes are
// not the package's: they depend on the node's services).
func unitFiles(bin, work string) (map[string]string, error) {
	units := map[string]string{}
	agent, err := output(bin, "agent", "unit")
	if err != nil {
		return nil, err
	}
	units["sentry-agent.service"] = string(agent)
	for _, u := range ReportUnits {
		if b, err := output(bin, "agent", "unit", u); err == nil {
			units[u] = string(b)
		} else if len(units) > 1 {
			return nil, err // one printed, the other not: not a release's binary
		}
	}
	root := filepath.Join(work, "bootcheck-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	// Without --json: the previous release's install (packaged by the
	// rolling-upgrade test) has no --json; what it wrote is read back.
	if _, err := output(bin, "bootcheck", "install", "--root", root); err != nil {
		return nil, err
	}
	for _, u := range []string{"sentry-bootcheck.service", "sentry-role.target"} {
		p := "/etc/systemd/system/" + u
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return nil, fmt.Errorf("sentry bootcheck install wrote no %s: %w", p, err)
		}
		units[u] = string(b)
	}
	for u, text := range units {
		text = strings.ReplaceAll(text, unitBinary, BinPath)
		if err := checkExec(u, text); err != nil {
			return nil, err
		}
		units[u] = text
	}
	return units, nil
}

// manDate is the date in a man page's .TH line.
var manDate = regexp.MustCompile(`(?m)^(\.TH \S+ \d+ ")\d{4}-\d{2}-\d{2}(")`)

var execLine = regexp.MustCompile(`(?m)^(ExecStart|ExecStartPre|ExecStartPost|ExecReload|ExecStop|ExecStopPost)=[-@:+!]*(\S+)`)

// checkExec checks that every sentry command of a unit is BinPath's.
func checkExec(unit, text string) error {
	for _, m := range execLine.FindAllStringSubmatch(text, -1) {
		if filepath.Base(m[2]) == "sentry" && m[2] != BinPath {
			return fmt.Errorf("%s: %s runs %s, not %s", unit, m[1], m[2], BinPath)
		}
	}
	return nil
}

// output runs the binary with a plain environment and returns its
// standard output.
func output(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/nonexistent"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// gz is b compressed as gzip -9n would: best compression, no name, no
// time.
func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// gunzip is gz's reverse.
func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// Changelog is the package's Debian changelog: one entry for this
// version, and the previous release's.
func Changelog(o Options) []byte {
	var b strings.Builder
	date := o.MTime.UTC().Format(time.RFC1123Z)
	entry := func(version, text string) {
		fmt.Fprintf(&b, "%s (%s) unstable; urgency=medium\n\n", PackageName, version)
		fmt.Fprintf(&b, "  * %s\n\n", text)
		fmt.Fprintf(&b, " -- %s  %s\n", Maintainer, date)
	}
	rel, err := readPreviousRelease(o.Repo)
	switch {
	case err != nil || rel.Version == o.Version:
		entry(o.Version, "Release "+o.Version+".")
	default:
		what := "Built from the main branch"
		if o.Commit != "" {
			what += ", commit " + o.Commit
		}
		entry(o.Version, what+". See docs/ for what changed.")
		// The release's entry carries its commit's date.
		relDate := o.MTime
		if ts, err := git(o.Repo, "show", "-s", "--format=%ct", rel.Commit); err == nil {
			if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
				relDate = time.Unix(sec, 0)
			}
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "%s (%s) unstable; urgency=medium\n\n  * Release %s (commit %s).\n\n -- %s  %s\n",
			PackageName, rel.Version, rel.Version, rel.Commit, Maintainer, relDate.UTC().Format(time.RFC1123Z))
	}
	return []byte(b.String())
}

func readPreviousRelease(repo string) (Release, error) {
	b, err := os.ReadFile(filepath.Join(repo, PreviousReleaseFile))
	if err != nil {
		return Release{}, err
	}
	return ParsePreviousRelease(b)
}
