package inventory

import (
	"slices"
	"strings"
)

// indexLen is how many leading bytes of a modalias key the index: enough for
// "pci:v00008086", the bus and the vendor.
const indexLen = 13

// Matcher finds the modules for a device's modalias, as modprobe does with
// modules.alias: every pattern is an fnmatch glob (* ? [...]). Patterns are
// compiled once and indexed by their literal prefix, so a lookup tries a
// handful of them, not the 30,000 of a distribution kernel.
type Matcher struct {
	byPrefix map[string][]int // first indexLen bytes of the literal prefix
	short    []int            // patterns whose literal prefix is shorter
	pats     []compiled
}

type compiled struct {
	literal string // the pattern's prefix before its first wildcard
	rest    string // the pattern from there on
	module  string
}

// NewMatcher compiles aliases.
func NewMatcher(aliases []Alias) *Matcher {
	m := &Matcher{byPrefix: map[string][]int{}, pats: make([]compiled, len(aliases))}
	for i, a := range aliases {
		lit := a.Pattern
		if j := strings.IndexAny(lit, "*?[\\"); j >= 0 {
			lit = lit[:j]
		}
		m.pats[i] = compiled{literal: lit, rest: a.Pattern[len(lit):], module: a.Module}
		if len(lit) >= indexLen {
			m.byPrefix[lit[:indexLen]] = append(m.byPrefix[lit[:indexLen]], i)
		} else {
			m.short = append(m.short, i)
		}
	}
	return m
}

// ModulesFor returns the modules whose alias matches modalias, each once, in
// the order of modules.alias (the order modprobe tries them).
func (m *Matcher) ModulesFor(modalias string) []string {
	var hits []int
	if len(modalias) >= indexLen {
		for _, i := range m.byPrefix[modalias[:indexLen]] {
			if m.pats[i].match(modalias) {
				hits = append(hits, i)
			}
		}
	}
	for _, i := range m.short {
		if m.pats[i].match(modalias) {
			hits = append(hits, i)
		}
	}
	if len(hits) == 0 {
		return nil
	}
	// Both lists are in file order; merge them.
	slices.Sort(hits)
	var out []string
	seen := map[string]bool{}
	for _, i := range hits {
		if mod := m.pats[i].module; !seen[mod] {
			seen[mod] = true
			out = append(out, mod)
		}
	}
	return out
}

func (c *compiled) match(s string) bool {
	if !strings.HasPrefix(s, c.literal) {
		return false
	}
	return Glob(c.rest, s[len(c.literal):])
}

// Glob reports whether s matches the fnmatch pattern p, with no special
// meaning for / or a leading dot: * is any run, ? any byte, [abc], [a-z],
// [!a-z] a class, and \ escapes the next byte. A [ without its ] is a plain
// character, as in fnmatch.
func Glob(p, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if n, ok := matchClass(p[px:], s, sx); n > 0 {
					if ok {
						px += n
						sx++
						continue
					}
				} else if sx < len(s) && s[sx] == '[' {
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(p) {
					if sx < len(s) && s[sx] == p[px+1] {
						px += 2
						sx++
						continue
					}
				} else if sx < len(s) && s[sx] == '\\' {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		// Mismatch: let the last * take one more byte.
		if starPx >= 0 && starSx < len(s) {
			starSx++
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

// matchClass matches s[sx] against the class at the start of p. n is the
// length of the class in p, 0 when p has no closing ] (not a class).
func matchClass(p, s string, sx int) (n int, ok bool) {
	i := 1
	neg := i < len(p) && (p[i] == '!' || p[i] == '^')
	if neg {
		i++
	}
	start := i
	for ; i < len(p); i++ {
		if p[i] == ']' && i > start {
			break
		}
	}
	if i >= len(p) {
		return 0, false
	}
	if sx >= len(s) {
		return i + 1, false
	}
	c := s[sx]
	in := false
	for j := start; j < i; j++ {
		lo := p[j]
		hi := lo
		if j+2 < i && p[j+1] == '-' {
			hi = p[j+2]
			j += 2
		}
		if lo <= c && c <= hi {
			in = true
		}
	}
	return i + 1, in != neg
}
