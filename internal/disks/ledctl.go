package disks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
)

// Locator lights or clears a bay's locate LED.
type Locator interface {
	Locate(ctx context.Context, dev string, on bool) error
}

// Ledctl runs ledmon's ledctl: `ledctl locate=/dev/<dev>` and
// `ledctl locate_off=/dev/<dev>`.
type Ledctl struct {
	// Path is the ledctl binary; "" looks up "ledctl" in PATH.
	Path string
	// Run runs a command and returns its combined output; nil runs it with
	// exec.CommandContext(ctx, name, args...).CombinedOutput().
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
}

var _ Locator = Ledctl{}

func (l Ledctl) name() string {
	if l.Path == "" {
		return "ledctl"
	}
	return l.Path
}

// Available reports whether the ledctl binary exists (and is executable).
func (l Ledctl) Available() bool {
	_, err := exec.LookPath(l.name())
	return err == nil
}

// Locate turns the locate LED of the bay holding dev ("sda" or "/dev/sda")
// on or off. The error names the device and quotes ledctl's output.
func (l Ledctl) Locate(ctx context.Context, dev string, on bool) error {
	name := strings.TrimPrefix(dev, "/dev/")
	if name == "" || strings.ContainsAny(name, "/ \t\n{}") {
		return fmt.Errorf("locate LED: %q is not a disk's kernel name", dev)
	}
	arg, state := "locate_off=/dev/"+name, "off"
	if on {
		arg, state = "locate=/dev/"+name, "on"
	}
	run := l.Run
	if run == nil {
		run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	out, err := run(ctx, l.name(), arg)
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("turning the locate LED of /dev/%s %s: %s %s", name, state, filepath.Base(l.name()), arg)
	if text := strings.TrimSpace(string(out)); text != "" {
		return fmt.Errorf("%s: %w; ledctl said %q", msg, err, text)
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w (install the ledmon package)", msg, err)
	}
	return fmt.Errorf("%s: %w; ledctl printed nothing", msg, err)
}
