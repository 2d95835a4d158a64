package synchronizer

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// maxLinkHops is the kernel's limit of symlinks followed in one lookup
// (MAXSYMLINKS); a chain longer than that is a loop to it as well.
const maxLinkHops = 40

var errLinkLoop = errors.New("a loop of symlinks (or more than 40 in a row)")

// linkView is what the disk will hold once the commit's links are in
// place: the commit's accepted links, and the disk as it is for the rest
// (files and directories are applied before any link is judged). A link
// refused here is absent: a link left at its path from before is removed.
type linkView struct {
	fs     *applyFS
	links  map[string]string // path -> target, the commit's links still accepted
	absent map[string]bool
}

func (v *linkView) lookup(p string) diskEntry {
	if t, ok := v.links[p]; ok {
		return diskEntry{typ: TypeSymlink, target: t, exists: true}
	}
	if v.absent[p] {
		return diskEntry{}
	}
	return v.fs.lookup(p)
}

// resolve follows the link at p the way the kernel will: one name at a
// time, each link met on the way followed in turn (not by cleaning the
// text), ".." the parent of where the walk really is. An absolute target
// starts at the apply Root, and ".." never goes above it. It returns
// where the link leads. Where a name on the way does not exist, the rest
// of the target is taken as written (cleaned).
func (v *linkView) resolve(p, target string) (string, error) {
	pos := filepath.Dir(p)
	if filepath.IsAbs(target) {
		pos = "/"
	}
	rest := strings.Split(target, "/")
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			pos = filepath.Dir(pos)
			continue
		}
		next := filepath.Join(pos, c)
		e := v.lookup(next)
		switch {
		case !e.exists:
			return filepath.Join(append([]string{next}, rest...)...), nil
		case e.typ == TypeSymlink:
			if hops++; hops > maxLinkHops {
				return "", errLinkLoop
			}
			if filepath.IsAbs(e.target) {
				pos = "/"
			}
			rest = append(strings.Split(e.target, "/"), rest...)
		case e.typ == TypeDir:
			pos = next
		default: // a file: the end, or (with more to go) nowhere
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
	}
	return pos, nil
}

// checkLinks judges every link of the commit against the view, until no
// refusal changes the view any more (a refused link can be on the way of
// another). It returns the refused links and why.
func (a *Applier) checkLinks(fs *applyFS, links map[string]string) map[string]string {
	v := &linkView{fs: fs, links: map[string]string{}, absent: map[string]bool{}}
	for p, t := range links {
		v.links[p] = t
	}
	refused := map[string]string{}
	paths := sortedKeys(links)
	for changed := true; changed; {
		changed = false
		for _, p := range paths {
			t, ok := v.links[p]
			if !ok {
				continue
			}
			to, err := v.resolve(p, t)
			reason := ""
			switch {
			case err != nil:
				reason = fmt.Sprintf("symlink to %s: %v", printable(t), err)
			case !a.Policy.inRoots(to):
				reason = fmt.Sprintf("symlink to %s, which leads to %s: outside the tracked paths", printable(t), printable(to))
			}
			if reason != "" {
				delete(v.links, p)
				v.absent[p] = true
				refused[p] = reason
				changed = true
			}
		}
	}
	return refused
}
