package tomlpos

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxShown is how many bytes of a value an error message quotes; a longer
// value is cut there and its size given.
const MaxShown = 80

// maxLine is how many bytes of a source line Context shows.
const maxLine = 120

// Quote is a value as an error message shows it: quoted with its
// non-printable characters escaped (strconv.Quote), cut at MaxShown bytes
// with its size when longer: "aaa…" (10485760 bytes). A configuration file
// can hold binary and megabytes on one line, and neither belongs on a
// terminal.
func Quote(s string) string {
	if len(s) <= MaxShown {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(cut(s, MaxShown)), len(s))
}

// Clean is a message (or an unquoted value) as an error shows it: its
// non-printable characters escaped as strconv.Quote does, quotes and
// backslashes left as they are, cut at max bytes (0: no cut) with its size
// when longer.
func Clean(s string, max int) string {
	if max > 0 && len(s) > max {
		return fmt.Sprintf("%s… (%d bytes)", escape(cut(s, max)), len(s))
	}
	return escape(s)
}

// cut is s cut to at most n bytes, at the start of a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// escape writes s with every character that is not printable as
// strconv.Quote writes it (\x00, \u001b, \u202e).
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// Context shows where an error is in data, the way BurntSushi/toml's
// ParseError.ErrorWithPosition does (the message, "At line L, column C:",
// the line and the two before it, a caret under the column), but with
// every line made safe for a terminal: characters that are not printable
// escaped, tabs expanded, and a line longer than 120 bytes cut to the part
// around the column. line and col are 1-based, col and length in bytes.
func Context(data []byte, line, col, length int, message string) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	length = max(length, 1)
	var b strings.Builder
	if length == 1 {
		fmt.Fprintf(&b, "toml: error: %s\n\nAt line %d, column %d:\n\n", Clean(message, 200), line, col)
	} else {
		fmt.Fprintf(&b, "toml: error: %s\n\nAt line %d, column %d-%d:\n\n", Clean(message, 200), line, col, col+length-1)
	}
	for l := max(line-2, 1); l < line; l++ {
		text, _, _ := showLine(lines[l-1], 0, 0)
		fmt.Fprintf(&b, "% 7d | %s\n", l, text)
	}
	text, at, width := showLine(lines[line-1], col-1, length)
	fmt.Fprintf(&b, "% 7d | %s\n", line, text)
	fmt.Fprintf(&b, "% 10s%s%s\n", "", strings.Repeat(" ", at), strings.Repeat("^", max(width, 1)))
	return b.String()
}

// showLine is a source line made safe to print, cut to the maxLine
// columns around byte offset off when longer, with the display column of
// off and the display width of the length bytes from there.
func showLine(s string, off, length int) (text string, at, width int) {
	off = min(max(off, 0), len(s))
	type piece struct {
		text string
		col  int // display column where it starts
		in   bool
	}
	var pieces []piece
	col := 0
	at = -1
	for i := 0; i < len(s); {
		if i >= off && at < 0 {
			at = col
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var p string
		switch {
		case r == '\t':
			p = strings.Repeat(" ", 8-col%8)
		case r == utf8.RuneError && size == 1:
			p = fmt.Sprintf(`\x%02x`, s[i])
		case strconv.IsPrint(r):
			p = s[i : i+size]
		default:
			q := strconv.QuoteRune(r)
			p = q[1 : len(q)-1]
		}
		in := at >= 0 && i < off+length
		pieces = append(pieces, piece{p, col, in})
		col += utf8.RuneCountInString(p)
		i += size
	}
	if at < 0 {
		at = col
	}
	from, to := 0, col // the display columns shown
	if col > maxLine {
		from = max(0, min(at-maxLine/2, col-maxLine))
		to = from + maxLine
	}
	var b strings.Builder
	shift := 0
	if from > 0 {
		b.WriteString("…")
		shift = 1
	}
	first := -1
	for _, p := range pieces {
		n := utf8.RuneCountInString(p.text)
		if p.col < from || p.col+n > to {
			continue
		}
		if first < 0 {
			first = p.col
		}
		b.WriteString(p.text)
		if p.in {
			width += n
		}
	}
	if to < col {
		b.WriteString("…")
	}
	if first < 0 {
		first = from
	}
	return b.String(), at - first + shift, width
}

// LineCol is the 1-based line and byte column of byte offset off in data
// (the decoder leaves the line of some errors at 0, an error at the end of
// the file among them, but gives the offset).
func LineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	start := strings.LastIndexByte(string(data[:off]), '\n') + 1
	return strings.Count(string(data[:off]), "\n") + 1, off - start + 1
}
