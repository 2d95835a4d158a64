package inventory

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Kernel is one installed kernel's module tree, /lib/modules/<release>.
type Kernel struct {
	Release string `json:"release" toml:"release"`
	// Aliases are modules.alias in file order, then the aliases of the
	// built-in drivers (modules.builtin.modinfo).
	Aliases []Alias `json:"aliases" toml:"aliases"`
	// Modules are modules.dep (where each module file is, and what it
	// needs) and modules.builtin (drivers inside the kernel image).
	Modules []Module `json:"modules" toml:"modules"`
	// Initramfs lists the modules in /boot/initrd.img-<release>.
	Initramfs Initramfs `json:"initramfs" toml:"initramfs"`
	// Incomplete says why the tree could not be read whole ("" when it
	// was): a leftover folder of a removed kernel has no modules.dep.
	Incomplete string `json:"incomplete,omitempty" toml:"incomplete,omitempty"`
}

// Alias is one line of modules.alias: a device pattern and the module for it.
type Alias struct {
	Pattern string `json:"pattern" toml:"pattern"`
	Module  string `json:"module" toml:"module"`
	Builtin bool   `json:"builtin,omitempty" toml:"builtin,omitempty"`
}

// Module is a loadable module or a driver built into the kernel.
type Module struct {
	Name    string   `json:"name" toml:"name"`
	Path    string   `json:"path" toml:"path"` // relative to /lib/modules/<release>
	Deps    []string `json:"deps,omitempty" toml:"deps,omitempty"`
	Builtin bool     `json:"builtin,omitempty" toml:"builtin,omitempty"`
	// Package ships the module file ("" when no package owns it: built
	// by DKMS, or copied by hand).
	Package string `json:"package,omitempty" toml:"package,omitempty"`
	// Firmware are the firmware= entries of its .modinfo, valid when
	// FirmwareKnown (they are read only for the modules of the devices
	// at hand).
	Firmware      []string `json:"firmware,omitempty" toml:"firmware,omitempty"`
	FirmwareKnown bool     `json:"firmware_known,omitempty" toml:"firmware_known,omitempty"`
}

// Module finds a module by name (dashes and underscores are the same).
func (k *Kernel) Module(name string) *Module {
	name = ModuleName(name)
	for i := range k.Modules {
		if k.Modules[i].Name == name {
			return &k.Modules[i]
		}
	}
	return nil
}

// Matcher compiles the kernel's aliases.
func (k *Kernel) Matcher() *Matcher { return NewMatcher(k.Aliases) }

// ModuleName is the name the kernel gives a module file or a module named
// with dashes: no folder, no .ko[.xz|.zst|.gz], underscores for dashes.
func ModuleName(s string) string {
	s = filepath.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(s, ".ko"), "-", "_")
}

// ReadKernel reads the module index of /lib/modules/<release> written by
// depmod: modules.alias, modules.dep, modules.builtin and
// modules.builtin.modinfo.
func ReadKernel(dir string) (Kernel, error) {
	k := Kernel{Release: filepath.Base(dir)}
	var missing []string
	if err := eachLine(filepath.Join(dir, "modules.alias"), func(name string, n int, l string) error {
		f := strings.Fields(l)
		if len(f) == 0 || f[0][0] == '#' {
			return nil
		}
		if len(f) != 3 || f[0] != "alias" {
			return fmt.Errorf("%w: %s:%d: not \"alias <pattern> <module>\": %q", ErrCorrupt, name, n, l)
		}
		k.Aliases = append(k.Aliases, Alias{Pattern: f[1], Module: ModuleName(f[2])})
		return nil
	}); errors.Is(err, os.ErrNotExist) {
		missing = append(missing, "modules.alias")
	} else if err != nil {
		return k, err
	}
	if err := eachLine(filepath.Join(dir, "modules.dep"), func(name string, n int, l string) error {
		if l == "" {
			return nil
		}
		path, deps, ok := strings.Cut(l, ":")
		if !ok || path == "" {
			return fmt.Errorf("%w: %s:%d: not \"<module file>: <dependencies>\": %q", ErrCorrupt, name, n, l)
		}
		m := Module{Name: ModuleName(path), Path: path}
		for _, d := range strings.Fields(deps) {
			m.Deps = append(m.Deps, ModuleName(d))
		}
		k.Modules = append(k.Modules, m)
		return nil
	}); errors.Is(err, os.ErrNotExist) {
		missing = append(missing, "modules.dep")
	} else if err != nil {
		return k, err
	}
	builtin := map[string]int{}
	if err := eachLine(filepath.Join(dir, "modules.builtin"), func(_ string, _ int, l string) error {
		if l != "" {
			builtin[ModuleName(l)] = len(k.Modules)
			k.Modules = append(k.Modules, Module{Name: ModuleName(l), Path: l, Builtin: true, FirmwareKnown: true})
		}
		return nil
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	// modules.builtin.modinfo: NUL-separated "module.key=value".
	if data, err := os.ReadFile(filepath.Join(dir, "modules.builtin.modinfo")); err == nil {
		for _, e := range bytes.Split(data, []byte{0}) {
			mod, kv, ok := strings.Cut(string(e), ".")
			if !ok {
				continue
			}
			key, val, _ := strings.Cut(kv, "=")
			switch key {
			case "alias":
				k.Aliases = append(k.Aliases, Alias{Pattern: val, Module: mod, Builtin: true})
			case "firmware":
				if i, ok := builtin[mod]; ok {
					k.Modules[i].Firmware = append(k.Modules[i].Firmware, val)
				}
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if len(missing) > 0 {
		k.Incomplete = "no " + strings.Join(missing, ", no ") + " (run depmod " + k.Release + ")"
	}
	return k, nil
}

// eachLine calls fn for every line of a file, numbered from 1, without its
// trailing blanks.
func eachLine(path string, fn func(name string, n int, line string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 1
	for ; sc.Scan(); n++ {
		if err := fn(path, n, strings.TrimRight(sc.Text(), " \t\r")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s:%d: %w", path, n, err) // the line it could not read
	}
	return nil
}

// ReadModuleFirmware reads the firmware= entries of a module's file, found
// under modulesDir/<release>, into the module; built-in drivers already
// have theirs.
func (k *Kernel) ReadModuleFirmware(modulesDir, name string) error {
	m := k.Module(name)
	if m == nil {
		return fmt.Errorf("no module %s in %s", name, k.Release)
	}
	if m.FirmwareKnown {
		return nil
	}
	fw, err := ModuleFirmware(filepath.Join(modulesDir, k.Release, m.Path))
	if err != nil {
		return err
	}
	m.Firmware, m.FirmwareKnown = fw, true
	return nil
}

// ModuleFirmware returns the firmware files a module file names in its
// .modinfo ELF section. The file may be plain (.ko) or compressed (.ko.xz,
// .ko.zst, .ko.gz).
func ModuleFirmware(path string) ([]string, error) {
	info, err := Modinfo(path)
	if err != nil {
		return nil, err
	}
	var fw []string
	for _, kv := range info {
		if v, ok := strings.CutPrefix(kv, "firmware="); ok {
			fw = append(fw, v)
		}
	}
	return fw, nil
}

// Modinfo returns the "key=value" entries of a module file's .modinfo.
func Modinfo(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".xz"):
		if r, err = xz.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case strings.HasSuffix(path, ".zst"):
		d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(path, ".gz"):
		if r, err = gzip.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not a kernel module: %w", path, err)
	}
	s := e.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: .modinfo: %w", path, err)
	}
	var out []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		if len(kv) > 0 {
			out = append(out, string(kv))
		}
	}
	return out, nil
}

// ReadLoadedModules reads the module names of /proc/modules.
func ReadLoadedModules(path string) ([]string, error) {
	var out []string
	err := eachLine(path, func(name string, n int, l string) error {
		if l == "" {
			return nil
		}
		f := strings.Fields(l)
		if len(f) < 3 {
			return fmt.Errorf("%w: %s:%d: not a module line: %q", ErrCorrupt, name, n, l)
		}
		out = append(out, f[0])
		return nil
	})
	sort.Strings(out)
	return out, err
}

// ReadFirmware lists the files under dir (/lib/firmware), relative to it,
// sorted; symlinks count as files.
func ReadFirmware(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Owners maps files to the packages that ship them, read from dpkg's
// info/*.list files in infoDir, for the paths want accepts. /usr/lib paths
// are given as /lib (merged /usr lists either). The package is named
// without its :arch.
func Owners(infoDir string, want func(path string) bool) (map[string]string, error) {
	lists, err := filepath.Glob(filepath.Join(infoDir, "*.list"))
	if err != nil {
		return nil, err
	}
	if len(lists) == 0 {
		if _, err := os.Stat(infoDir); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		pkg := strings.TrimSuffix(filepath.Base(l), ".list")
		pkg, _, _ = strings.Cut(pkg, ":")
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if bytes.HasPrefix(line, []byte("/usr/lib/")) {
				line = line[len("/usr"):]
			}
			if p := string(line); len(line) > 0 && want(p) {
				out[p] = pkg
			}
		}
	}
	return out, nil
}
