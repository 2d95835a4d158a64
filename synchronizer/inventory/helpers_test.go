package inventory

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// nodeSources roots Sources at a fixture node; the initramfs listings are
// lsinitramfs output saved beside the image name.
func nodeSources(root, name string) Sources {
	s := Host(root)
	s.Node = name
	s.Now = func() time.Time { return fixedNow }
	s.Initramfs = func(image string) Initramfs {
		out, err := os.ReadFile(image + ".lsinitramfs")
		if err != nil {
			return Initramfs{Image: image, State: StateUnknown, Reason: err.Error()}
		}
		return ParseLsinitramfs(image, out)
	}
	return s
}

func take(t *testing.T, root, name string, peer ...*Inventory) *Inventory {
	t.Helper()
	src := nodeSources(root, name)
	for _, p := range peer {
		src.Modaliases = append(src.Modaliases, p.Hardware.Modaliases()...)
	}
	inv, err := Take(src)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// takePair takes P and S each knowing the other's devices, as the agents do
// after a first exchange.
func takePair(t *testing.T, pRoot, sRoot string) (p, s *Inventory) {
	t.Helper()
	p0, s0 := take(t, pRoot, "p"), take(t, sRoot, "s")
	return take(t, pRoot, "p", s0), take(t, sRoot, "s", p0)
}

// copyTree copies a fixture tree, symlinks as symlinks, for a test to change.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		case fi.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
