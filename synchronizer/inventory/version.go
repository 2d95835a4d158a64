package inventory

import "strings"

// CompareVersions orders two Debian versions as dpkg does (epoch, then
// upstream, then revision; ~ sorts before anything, even the end): <0 when
// a is older than b, 0 when equal, >0 when newer. Kernel release names such
// as 6.1.0-18-amd64 order correctly too.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := compareNum(ea, eb); c != 0 {
		return c
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

func splitVersion(v string) (epoch, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

func order(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// compareFragment is dpkg's verrevcmp: alternate runs of non-digits
// (compared by order) and digits (compared as numbers).
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && (a[0] < '0' || a[0] > '9')) || (b != "" && (b[0] < '0' || b[0] > '9')) {
			var ca, cb int
			if a != "" && (a[0] < '0' || a[0] > '9') {
				ca = order(a[0])
			}
			if b != "" && (b[0] < '0' || b[0] > '9') {
				cb = order(b[0])
			}
			if ca != cb {
				return ca - cb
			}
			a, b = a[1:], b[1:]
		}
		var na, nb string
		na, a = digits(a)
		nb, b = digits(b)
		if c := compareNum(na, nb); c != 0 {
			return c
		}
	}
	return 0
}

func digits(s string) (string, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

func compareNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
