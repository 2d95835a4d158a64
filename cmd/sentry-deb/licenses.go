package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"unicode"
)

// NoticesName is the file, in DocDir (gzipped), with the licenses of the
// Go toolchain and the modules the binary is built from: their licenses
// ask that a binary's copies carry them. copyright points to it.
const NoticesName = "third-party-licenses"

// licenseFile is a license or notice file's name at a module's top.
var licenseFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|unlicense)([._-].*)?$`)

// goCmd is the go command: the one in PATH, else this toolchain's.
func goCmd() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goEnv is `go env NAME`.
func goEnv(name string) (string, error) {
	out, err := exec.Command(goCmd(), "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %v", name, err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", fmt.Errorf("go env %s is empty", name)
	}
	return v, nil
}

// escapeModulePath is the module cache's spelling of a module path or
// version: each upper-case letter as '!' and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ThirdPartyNotices is the text of NoticesName for the binary: the Go
// toolchain's license and each module's license files, read from the
// module cache, in the order of the binary's build information.
func ThirdPartyNotices(binary string) ([]byte, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read the build information of %s: %w", binary, err)
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return nil, err
	}
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("The sentry binary (" + BinPath + ") is built with the Go toolchain and the\n" +
		"Go modules below. Each one's license and notice files follow, as found\n" +
		"at the top of the module.\n")
	section := func(title, path string) error {
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n==> %s: %s\n\n%s", title, filepath.Base(path), strings.TrimRight(string(text), "\n")+"\n")
		return nil
	}
	if err := section("Go "+bi.GoVersion+" (compiler, runtime and standard library)", filepath.Join(goroot, "LICENSE")); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(goroot, "PATENTS")); err == nil {
		if err := section("Go "+bi.GoVersion+" (compiler, runtime and standard library)", filepath.Join(goroot, "PATENTS")); err != nil {
			return nil, err
		}
	}
	var missing []string
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		dir := m.Path
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(modcache, escapeModulePath(m.Path)+"@"+escapeModulePath(m.Version))
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("module %s %s: %w (go mod download it)", m.Path, m.Version, err)
		}
		var names []string
		for _, e := range ents {
			if e.Type().IsRegular() && licenseFile.MatchString(e.Name()) {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		if len(names) == 0 {
			missing = append(missing, m.Path+" "+m.Version)
			fmt.Fprintf(&b, "\n==> %s %s: no license file at the top of the module\n", m.Path, m.Version)
			continue
		}
		for _, n := range names {
			if err := section(m.Path+" "+m.Version, filepath.Join(dir, n)); err != nil {
				return nil, err
			}
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "sentry-deb: warning: no license file found for %s\n", strings.Join(missing, ", "))
	}
	return []byte(b.String()), nil
}
