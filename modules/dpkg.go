package modules

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DpkgInfo is where dpkg keeps each package's file list, under a root.
const DpkgInfo = "var/lib/dpkg/info"

// packageFiles reads the files dpkg installed for pkg: <pkg>.list and
// <pkg>:<arch>.list under root/var/lib/dpkg/info. found is false when
// neither exists (the package is not installed).
func packageFiles(root, pkg string) (files map[string]bool, found bool, err error) {
	dir := filepath.Join(root, DpkgInfo)
	lists, err := filepath.Glob(filepath.Join(dir, pkg+":*.list"))
	if err != nil {
		return nil, false, err
	}
	lists = append([]string{filepath.Join(dir, pkg+".list")}, lists...)
	files = map[string]bool{}
	for _, l := range lists {
		f, err := os.Open(l)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		found = true
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if p := strings.TrimSpace(sc.Text()); p != "" {
				files[p] = true
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", l, err)
		}
	}
	return files, found, nil
}

// CheckExecutables checks that each executable the manifest declares is a
// file of one of its packages, as dpkg under dpkgRoot ("/" on a node) lists
// them. An executable outside them is an *Error at the executables key.
func (m *Manifest) CheckExecutables(dpkgRoot string) error {
	if len(m.Executables) == 0 {
		return nil
	}
	owned := map[string]bool{}
	var missing []string
	for _, pkg := range m.Packages {
		files, found, err := packageFiles(dpkgRoot, pkg)
		if err != nil {
			return fmt.Errorf("%s: reading the files of package %s: %w", m.Source, pkg, err)
		}
		if !found {
			missing = append(missing, pkg)
		}
		for f := range files {
			owned[f] = true
		}
	}
	for i, e := range m.Executables {
		if owned[e] {
			continue
		}
		msg := fmt.Sprintf("entry %d: %q is not a file of the module's packages (%s, as listed in %s)",
			i+1, e, strings.Join(m.Packages, ", "), filepath.Join(dpkgRoot, DpkgInfo))
		if len(missing) > 0 {
			msg += "; not installed: " + strings.Join(missing, ", ")
		}
		return m.err("executables", "%s", msg)
	}
	return nil
}
