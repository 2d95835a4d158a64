// Package tomlpos finds where a key is written in a TOML file, so that an
// error can name its line and column. BurntSushi/toml keeps key positions
// private; this re-reads the text: table headers and "key = value" lines.
// internal/config and modules use it.
package tomlpos

import (
	"fmt"
	"strings"
)

// Locator knows the position of every key of one file. In arrays of
// tables the n-th [[probes]] table is "probes[n]" (1-based), and
// "probes.kind" is also known by its first occurrence, the way the decoder
// names keys.
type Locator struct {
	pos map[string][2]int     // key -> line, column (1-based) of its first occurrence
	all map[string][]occurred // plain key (no index) -> every occurrence
}

type occurred struct {
	line, col int
	indexed   string
}

// New reads data.
func New(data []byte) *Locator {
	l := &Locator{pos: map[string][2]int{}, all: map[string][]occurred{}}
	count := map[string]int{} // plain array-of-tables key -> tables seen
	plain, indexed := "", ""
	inMultiline := ""
	for i, line := range strings.Split(string(data), "\n") {
		if inMultiline != "" {
			if strings.Contains(line, inMultiline) {
				inMultiline = ""
			}
			continue
		}
		trimmed := strings.TrimLeft(line, " \t")
		col := len(line) - len(trimmed) + 1
		switch {
		case trimmed == "" || trimmed[0] == '#':
			continue
		case strings.HasPrefix(trimmed, "[["):
			if end := strings.Index(trimmed, "]]"); end > 0 {
				plain = NormKey(trimmed[2:end])
				count[plain]++
				indexed = indexKey(plain, count)
				l.add(plain, indexed, i+1, col)
			}
			continue
		case trimmed[0] == '[':
			if end := strings.Index(trimmed, "]"); end > 0 {
				plain = NormKey(trimmed[1:end])
				indexed = indexKey(plain, count)
				l.add(plain, indexed, i+1, col)
			}
			continue
		}
		eq := strings.Index(trimmed, "=")
		if eq <= 0 {
			continue
		}
		key := NormKey(trimmed[:eq])
		if plain != "" {
			l.add(plain+"."+key, indexed+"."+key, i+1, col)
		} else {
			l.add(key, key, i+1, col)
		}
		rest := strings.TrimSpace(trimmed[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(rest, q) && !strings.Contains(rest[3:], q) {
				inMultiline = q
			}
		}
	}
	return l
}

// indexKey writes each prefix of plain that is an array of tables with the
// index of its current table: "probes.params" -> "probes[2].params".
func indexKey(plain string, count map[string]int) string {
	parts := strings.Split(plain, ".")
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
		if n := count[strings.Join(parts[:i+1], ".")]; n > 0 {
			fmt.Fprintf(&b, "[%d]", n)
		}
	}
	return b.String()
}

func (l *Locator) add(plain, indexed string, line, col int) {
	p := [2]int{line, col}
	for _, k := range []string{plain, indexed} {
		if _, ok := l.pos[k]; !ok {
			l.pos[k] = p
		}
	}
	l.all[plain] = append(l.all[plain], occurred{line, col, indexed})
}

// Indexed names a plain key as the decoder reports it ("units.oder") by
// its first occurrence, with the indexes of its arrays ("units[2].oder").
func (l *Locator) Indexed(plain string) string {
	if o := l.all[plain]; len(o) > 0 {
		return o[0].indexed
	}
	return plain
}

// Find returns the line and column of key (plain or indexed), or of its
// nearest written parent, or 0, 0 when none of it is in the file.
func (l *Locator) Find(key string) (int, int) {
	for k := key; k != ""; {
		if p, ok := l.pos[k]; ok {
			return p[0], p[1]
		}
		switch {
		case strings.HasSuffix(k, "]") && strings.LastIndex(k, "[") > strings.LastIndex(k, "."):
			k = k[:strings.LastIndex(k, "[")]
		case strings.Contains(k, "."):
			k = k[:strings.LastIndex(k, ".")]
		default:
			k = ""
		}
	}
	return 0, 0
}

// Near returns the last occurrence of the plain key at or before line (the
// decoder reports the line of a bad value, and a key of an array of tables
// occurs once per table); else what find says.
func (l *Locator) Near(key string, line int) (int, int, string) {
	var best occurred
	for _, o := range l.all[key] {
		if o.line <= line && o.line >= best.line {
			best = o
		}
	}
	if best.line > 0 {
		return best.line, best.col, best.indexed
	}
	ln, c := l.Find(key)
	return ln, c, key
}

// NormKey turns ` a . "b" ` into `a.b`.
func NormKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.Trim(p, `"'`)
		parts[i] = p
	}
	return strings.Join(parts, ".")
}
