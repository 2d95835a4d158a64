package lab

import (
	"bufio"
	"os"
	"reflect"
	"testing"
)

// feed gives the parser each line of a captured debootstrap output and
// returns what the progress line showed at the end of each step.
func feed(t *testing.T, name string) (*debootstrapProgress, []string) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := newDebootstrapProgress()
	var steps []string
	last := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !d.Line(sc.Text()) {
			continue
		}
		if d.Step() != stepOf(last) && last != "" {
			steps = append(steps, last)
		}
		last = d.Step()
		if det := d.Detail(); det != "" {
			last += ": " + det
		}
	}
	if last != "" {
		steps = append(steps, last)
	}
	return d, steps
}

func stepOf(s string) string {
	for i := range s {
		if s[i] == ':' {
			return s[:i]
		}
	}
	return s
}

func TestDebootstrapProgress(t *testing.T) {
	// testdata/debootstrap-bookworm.out is debootstrap --variant=minbase
	// --include=... bookworm, its messages as functions and
	// scripts/debian-common print them: 37 required packages (6 of
	// them installed as core packages, so not configured again), 18 in the
	// base system (one a pre-dependency, installed without a line).
	d, steps := feed(t, "debootstrap-bookworm.out")
	want := []string{
		"reading the mirror's index",
		"resolving dependencies",
		"retrieving packages: 55 retrieved",
		"extracting the required packages: 37 extracted",
		"installing the core packages",
		"unpacking the required packages: 37/37 packages",
		"configuring the required packages: 31/37 packages",
		"unpacking the extra packages: 17/18 packages",
		"configuring the extra packages: 18/18 packages",
		"base system installed: 55 packages",
	}
	if !reflect.DeepEqual(steps, want) {
		t.Errorf("steps:\n\t%q\nwant\n\t%q", steps, want)
	}
	if d.Error() != "" {
		t.Errorf("error %q from a run that succeeded", d.Error())
	}
}

func TestDebootstrapProgressMidStep(t *testing.T) {
	d := newDebootstrapProgress()
	for _, l := range []string{
		"I: Retrieving InRelease ",
		"I: Retrieving adduser 3.134",
		"I: Validating adduser 3.134",
		"I: Retrieving apt 2.6.1",
	} {
		d.Line(l)
	}
	if d.Step() != dbsRetrieve || d.Detail() != "2 retrieved" {
		t.Errorf("step %q, detail %q", d.Step(), d.Detail())
	}
	// Lines that are not debootstrap's messages change nothing.
	for _, l := range []string{"", "Selecting previously unselected package x.", "I: Target architecture can be executed"} {
		if d.Line(l) {
			t.Errorf("%q changed the progress", l)
		}
	}
	// A package named like a phase is still a package.
	d.Line("I: Unpacking required packages...")
	d.Line("I: Unpacking the...")
	if d.Step() != dbsUnpackReq || d.Detail() != "1 package" {
		t.Errorf("step %q, detail %q", d.Step(), d.Detail())
	}
}

func TestDebootstrapProgressError(t *testing.T) {
	d, steps := feed(t, "debootstrap-fail.out")
	if want := "Couldn't download packages: nginx-light"; d.Error() != want {
		t.Errorf("error %q, want %q", d.Error(), want)
	}
	if last := steps[len(steps)-1]; last != "retrieving packages: 1 retrieved" {
		t.Errorf("last step %q", last)
	}
	w := newDebootstrapProgress()
	w.Line("W: Failure trying to run: chroot \"/x\" dpkg --force-depends --install /var/cache/apt/archives/base-passwd_3.6.1_amd64.deb")
	w.Line("W: See /x/debootstrap/debootstrap.log for details")
	if w.Error() == "" {
		t.Error("a failure told by warnings only gives no message")
	}
}
