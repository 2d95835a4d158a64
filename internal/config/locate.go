package config

import (
	"strings"
)

// locator finds where a dotted key is written in a TOML file. BurntSushi/toml
// keeps key positions private, so this re-reads the text: table headers and
// "key = value" lines, enough for the errors of a hand-written config file.
type locator struct {
	pos map[string][2]int // dotted key -> line, column (1-based)
}

func newLocator(data []byte) *locator {
	l := &locator{pos: map[string][2]int{}}
	table := ""
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
				table = normKey(trimmed[2:end])
				l.add(table, i+1, col)
			}
			continue
		case trimmed[0] == '[':
			if end := strings.Index(trimmed, "]"); end > 0 {
				table = normKey(trimmed[1:end])
				l.add(table, i+1, col)
			}
			continue
		}
		eq := strings.Index(trimmed, "=")
		if eq <= 0 {
			continue
		}
		key := normKey(trimmed[:eq])
		if table != "" {
			key = table + "." + key
		}
		l.add(key, i+1, col)
		rest := strings.TrimSpace(trimmed[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(rest, q) && !strings.Contains(rest[3:], q) {
				inMultiline = q
			}
		}
	}
	return l
}

func (l *locator) add(key string, line, col int) {
	if _, ok := l.pos[key]; !ok {
		l.pos[key] = [2]int{line, col}
	}
}

// find returns the line and column of key, or of its nearest written parent
// table, or 0, 0 when the key is not in the file.
func (l *locator) find(key string) (int, int) {
	for k := key; k != ""; {
		if p, ok := l.pos[k]; ok {
			return p[0], p[1]
		}
		i := strings.LastIndex(k, ".")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0, 0
}

// normKey turns ` a . "b" ` into `a.b`.
func normKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.Trim(p, `"'`)
		parts[i] = p
	}
	return strings.Join(parts, ".")
}
