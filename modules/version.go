package modules

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a module version, MAJOR.MINOR.PATCH.
type Version [3]int

var versionRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$`)

// ParseVersion reads "1.2.0".
func ParseVersion(s string) (Version, error) {
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a version: write MAJOR.MINOR.PATCH with numbers, such as \"1.2.0\"", s)
	}
	var v Version
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// Compare returns -1, 0 or 1.
func (v Version) Compare(w Version) int {
	for i := range v {
		switch {
		case v[i] < w[i]:
			return -1
		case v[i] > w[i]:
			return 1
		}
	}
	return 0
}

// compareVersions orders two valid version strings; an invalid one sorts
// first.
func compareVersions(a, b string) int {
	va, errA := ParseVersion(a)
	vb, errB := ParseVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}

// ParseRef reads "NAME" or "NAME@VERSION"; version is "" without "@".
func ParseRef(ref string) (name, version string, err error) {
	name, version, hasAt := strings.Cut(ref, "@")
	if !nameRe.MatchString(name) {
		return "", "", fmt.Errorf("%q is not a module name: use lower-case letters, digits and '-'", name)
	}
	if hasAt {
		if _, err := ParseVersion(version); err != nil {
			return "", "", err
		}
	}
	return name, version, nil
}
