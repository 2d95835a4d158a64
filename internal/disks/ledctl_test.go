package disks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

type call struct {
	name string
	args []string
}

func recorder(calls *[]call, out string, err error) func(context.Context, string, ...string) ([]byte, error) {
	return func(_ context.Context, name string, args ...string) ([]byte, error) {
		*calls = append(*calls, call{name, args})
		return []byte(out), err
	}
}

func TestLedctlLocateArgs(t *testing.T) {
	var calls []call
	ctx := context.Background()
	l := Ledctl{Run: recorder(&calls, "", nil)}
	if err := l.Locate(ctx, "sda", true); err != nil {
		t.Fatal(err)
	}
	if err := l.Locate(ctx, "/dev/nvme0n1", false); err != nil {
		t.Fatal(err)
	}
	l.Path = "/usr/sbin/ledctl"
	if err := l.Locate(ctx, "sdb", true); err != nil {
		t.Fatal(err)
	}
	want := []call{
		{"ledctl", []string{"locate=/dev/sda"}},
		{"ledctl", []string{"locate_off=/dev/nvme0n1"}},
		{"/usr/sbin/ledctl", []string{"locate=/dev/sdb"}},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("calls\n got %q\nwant %q", calls, want)
	}
}

func TestLedctlLocateErrors(t *testing.T) {
	exit1 := errors.New("exit status 1")
	for _, tc := range []struct {
		name string
		out  string
		err  error
		on   bool
		want string
	}{
		{"output quoted", "ledctl: /dev/sda: device not supported\n", exit1, true,
			`turning the locate LED of /dev/sda on: ledctl locate=/dev/sda: exit status 1; ledctl said "ledctl: /dev/sda: device not supported"`},
		{"no output", "", exit1, false,
			`turning the locate LED of /dev/sda off: ledctl locate_off=/dev/sda: exit status 1; ledctl printed nothing`},
		{"not installed", "", &exec.Error{Name: "ledctl", Err: exec.ErrNotFound}, true,
			`turning the locate LED of /dev/sda on: ledctl locate=/dev/sda: exec: "ledctl": executable file not found in $PATH (install the ledmon package)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []call
			err := Ledctl{Run: recorder(&calls, tc.out, tc.err)}.Locate(context.Background(), "sda", tc.on)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err\n got %v\nwant %s", err, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
		})
	}
}

func TestLedctlLocateBadDevice(t *testing.T) {
	var calls []call
	l := Ledctl{Run: recorder(&calls, "", nil)}
	for _, dev := range []string{"", "/dev/", "sda/../sdb", "{ /dev/sda }"} {
		if err := l.Locate(context.Background(), dev, true); err == nil {
			t.Errorf("Locate(%q): no error", dev)
		}
	}
	if len(calls) != 0 {
		t.Errorf("ran ledctl: %q", calls)
	}
}

// With no Run seam, a Path to a missing binary fails naming the device.
func TestLedctlLocateMissingBinary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledctl")
	err := Ledctl{Path: path}.Locate(context.Background(), "sdc", true)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err %v, want not exist", err)
	}
	want := fmt.Sprintf("turning the locate LED of /dev/sdc on: ledctl locate=/dev/sdc: fork/exec %s: no such file or directory (install the ledmon package)", path)
	if err.Error() != want {
		t.Errorf("err\n got %v\nwant %s", err, want)
	}
}

func TestLedctlAvailable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe, plain := write("ledctl", 0o755), write("not-executable", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "a-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		exe:                          true,
		plain:                        false,
		filepath.Join(dir, "a-dir"):  false,
		filepath.Join(dir, "absent"): false,
	} {
		if got := (Ledctl{Path: path}).Available(); got != want {
			t.Errorf("Available(%s) = %v, want %v", path, got, want)
		}
	}
	t.Setenv("PATH", dir)
	if !(Ledctl{}).Available() {
		t.Error("ledctl in PATH not found")
	}
	t.Setenv("PATH", filepath.Join(dir, "a-dir"))
	if (Ledctl{}).Available() {
		t.Error("ledctl found in a PATH without it")
	}
}
