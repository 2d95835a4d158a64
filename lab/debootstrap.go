package lab

import (
	"fmt"
	"strings"
)

// debootstrapProgress follows debootstrap's output (its "I:", "W:" and "E:"
// lines, as /usr/share/debootstrap/functions prints them without
// --debian-installer) and says which step it is at and how far.
//
// debootstrap names each package as it retrieves, extracts, unpacks and
// configures it, but prints no total while retrieving; the totals of the
// later steps are known from what was retrieved and extracted: it extracts
// the required packages only, and the base system (apt and the --include
// packages with their dependencies) is the rest.
type debootstrapProgress struct {
	step      string
	phase     string // "", "required" or "base": which dpkg pass runs
	retrieved map[string]bool
	extracted int
	unpacked  int // in the current dpkg pass
	config    int // in the current dpkg pass
	lastErr   string
	warnings  []string
}

// The steps, as the progress line names them.
const (
	dbsIndex     = "reading the mirror's index"
	dbsResolve   = "resolving dependencies"
	dbsRetrieve  = "retrieving packages"
	dbsExtract   = "extracting the required packages"
	dbsCore      = "installing the core packages"
	dbsUnpackReq = "unpacking the required packages"
	dbsConfReq   = "configuring the required packages"
	dbsUnpackExt = "unpacking the extra packages"
	dbsConfExt   = "configuring the extra packages"
	dbsDone      = "base system installed"
)

func newDebootstrapProgress() *debootstrapProgress {
	return &debootstrapProgress{retrieved: map[string]bool{}}
}

// Line takes one line of debootstrap's output and says whether the step
// or its detail changed.
func (d *debootstrapProgress) Line(line string) bool {
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "E: "):
		d.lastErr = strings.TrimPrefix(line, "E: ")
		return false
	case strings.HasPrefix(line, "W: "):
		d.warnings = append(d.warnings, strings.TrimPrefix(line, "W: "))
		return false
	case !strings.HasPrefix(line, "I: "):
		return false
	}
	msg := strings.TrimPrefix(line, "I: ")
	verb, rest, _ := strings.Cut(msg, " ")
	args := strings.Fields(rest)
	name := ""
	if len(args) > 0 {
		name = strings.TrimSuffix(args[0], "...")
	}
	switch {
	// Phase headers first: "Configuring the base system..." is not a
	// package called "the".
	case msg == "Installing core packages...":
		return d.set(dbsCore)
	case msg == "Unpacking required packages...":
		d.phase, d.unpacked, d.config = "required", 0, 0
		return d.set(dbsUnpackReq)
	case msg == "Configuring required packages...":
		d.phase, d.config = "required", 0
		return d.set(dbsConfReq)
	case msg == "Unpacking the base system...":
		d.phase, d.unpacked, d.config = "base", 0, 0
		return d.set(dbsUnpackExt)
	case msg == "Configuring the base system...":
		d.phase, d.config = "base", 0
		return d.set(dbsConfExt)
	case strings.HasPrefix(msg, "Base system installed successfully"):
		return d.set(dbsDone)
	case strings.HasPrefix(msg, "Resolving dependencies"),
		strings.HasPrefix(msg, "Found additional"),
		strings.HasPrefix(msg, "Found packages in base"),
		strings.HasPrefix(msg, "Checking component"):
		return d.set(dbsResolve)
	case msg == "Checking Release signature", strings.HasPrefix(msg, "Valid Release signature"):
		return d.set(dbsIndex)
	case verb == "Retrieving" || verb == "Validating":
		if len(args) < 2 {
			// An index: InRelease, Release, Release.gpg, Packages.
			return d.set(dbsIndex)
		}
		d.retrieved[name] = true
		return d.set(dbsRetrieve)
	case verb == "Extracting":
		d.extracted++
		return d.set(dbsExtract)
	case verb == "Unpacking":
		d.unpacked++
		return d.set(d.step)
	case verb == "Configuring":
		d.config++
		return d.set(d.step)
	}
	return false
}

// set moves to step; every package line changes the detail, so it says
// that something shown changed.
func (d *debootstrapProgress) set(step string) bool {
	d.step = step
	return true
}

// Step is the current step ("" before the first).
func (d *debootstrapProgress) Step() string { return d.step }

// Detail is how far the current step is, e.g. "37/120 packages".
func (d *debootstrapProgress) Detail() string {
	n := len(d.retrieved)
	required, extra := d.extracted, n-d.extracted
	total := 0
	done := 0
	switch d.step {
	case dbsRetrieve:
		return fmt.Sprintf("%d retrieved", n)
	case dbsExtract:
		return fmt.Sprintf("%d extracted", d.extracted)
	case dbsUnpackReq:
		done, total = d.unpacked, required
	case dbsConfReq:
		done, total = d.config, required
	case dbsUnpackExt:
		done, total = d.unpacked, extra
	case dbsConfExt:
		done, total = d.config, extra
	case dbsDone:
		return packages(n)
	default:
		return ""
	}
	if total <= 0 || done > total {
		return packages(done)
	}
	return fmt.Sprintf("%d/%s", done, packages(total))
}

func packages(n int) string {
	if n == 1 {
		return "1 package"
	}
	return fmt.Sprintf("%d packages", n)
}

// Error is the last error debootstrap printed ("E: ..."), or, without one,
// its last warning (a failed chroot command is a warning followed by a
// pointer to its log).
func (d *debootstrapProgress) Error() string {
	if d.lastErr != "" {
		return d.lastErr
	}
	if len(d.warnings) > 0 {
		return strings.Join(d.warnings, "; ")
	}
	return ""
}
