// Package bootfw checks that a disk set boots without the machine it runs
// on. The firmware's boot entries live in the machine's NVRAM, not on the
// disks: moved into the other machine, a UEFI disk set boots only through
// the removable-media fallback loader (EFI/BOOT/BOOTX64.EFI) of an EFI
// system partition, and the ESPs of the RAID members must be in step so
// that any member boots; a BIOS disk set needs GRUB in the boot area of
// every member disk.
package bootfw

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sentryha/sentry/internal/disks"
)

// FallbackLoader is the removable-media path of an x86-64 UEFI loader.
const FallbackLoader = "EFI/BOOT/BOOTX64.EFI"

// Report is what was found.
type Report struct {
	// Mode: "uefi", "bios", or "none" (no disks of its own: a container).
	Mode string `json:"mode"`
	ESPs []ESP  `json:"esps,omitempty"`
	// GRUB: each member disk and whether GRUB is in its boot area (BIOS).
	GRUB map[string]bool `json:"grub,omitempty"`
}

// ESP is one EFI system partition of the disk set.
type ESP struct {
	Device   string `json:"device"` // /dev/sda1
	Fallback bool   `json:"fallback"`
	Digest   string `json:"digest,omitempty"` // of every file's path and content
	Err      string `json:"error,omitempty"`
}

// Mounter makes an ESP's files readable: dir is where they are, and done
// undoes what it did. The agent's mounts an unmounted ESP read-only in a
// private folder; a test gives fixture folders.
type Mounter interface {
	Mount(device string) (dir string, done func(), err error)
}

// Options says where /sys and /dev are and how ESPs are read.
type Options struct {
	Root    string // "" is /
	Mounter Mounter
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

// Inspect reports how the node's disks boot. ds are the node's disks
// (disks.Scan). The disk set is every disk in an md array, or every
// non-removable disk when there are no arrays (disks.Find's rule): a USB
// stick is not part of it.
func Inspect(o Options, ds []disks.Disk) (*Report, error) {
	members := setMembers(ds)
	if len(members) == 0 {
		return &Report{Mode: "none"}, nil
	}
	if _, err := os.Stat(filepath.Join(o.root(), "sys/firmware/efi")); err == nil {
		r := &Report{Mode: "uefi"}
		for _, d := range members {
			for _, p := range d.Partitions {
				if !p.ESP {
					continue
				}
				r.ESPs = append(r.ESPs, o.esp("/dev/"+p.Name))
			}
		}
		return r, nil
	}
	r := &Report{Mode: "bios", GRUB: map[string]bool{}}
	for _, d := range members {
		ok, err := hasGRUB(filepath.Join(o.root(), "dev", d.Name))
		if err != nil {
			return nil, fmt.Errorf("reading the boot area of /dev/%s: %w", d.Name, err)
		}
		r.GRUB["/dev/"+d.Name] = ok
	}
	return r, nil
}

func setMembers(ds []disks.Disk) []disks.Disk {
	var in []disks.Disk
	for _, d := range ds {
		if len(d.Arrays) > 0 {
			in = append(in, d)
		}
	}
	if len(in) > 0 {
		return in
	}
	for _, d := range ds {
		if !d.Removable {
			in = append(in, d)
		}
	}
	return in
}

func (o Options) esp(dev string) ESP {
	e := ESP{Device: dev}
	if o.Mounter == nil {
		e.Err = "no way to read it"
		return e
	}
	dir, done, err := o.Mounter.Mount(dev)
	if err != nil {
		e.Err = err.Error()
		return e
	}
	defer done()
	e.Fallback = hasFile(dir, FallbackLoader)
	e.Digest, err = digest(dir)
	if err != nil {
		e.Err = err.Error()
	}
	return e
}

// hasFile finds rel under dir without regard to case: FAT is
// case-insensitive, and installers write efi/boot/bootx64.efi too.
func hasFile(dir, rel string) bool {
	parts := strings.Split(rel, "/")
	if len(parts) == 0 || parts[0] == "" {
		st, err := os.Stat(dir)
		return err == nil && st.Mode().IsRegular() && st.Size() > 0
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if strings.EqualFold(e.Name(), parts[0]) && hasFile(filepath.Join(dir, e.Name()), strings.Join(parts[1:], "/")) {
			return true
		}
	}
	return false
}

// digest hashes every regular file's path (lower-cased) and content, so
// two ESPs with the same files have the same digest.
func digest(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(files, func(i, j int) bool { return strings.ToLower(files[i]) < strings.ToLower(files[j]) })
	h := sha256.New()
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00", strings.ToLower(filepath.ToSlash(rel)))
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// hasGRUB reads a disk's first sector: GRUB's boot.img carries the text
// "GRUB " before its error messages ("Geom", "Hard Disk", "Read", " Error").
func hasGRUB(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, 512)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF {
		return false, err
	}
	b = b[:n]
	return n == 512 && b[510] == 0x55 && b[511] == 0xaa && bytes.Contains(b, []byte("GRUB ")), nil
}
