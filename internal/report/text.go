package report

import (
	"strings"
	"unicode/utf8"
)

// textWidth is where the text report wraps its paragraphs.
const textWidth = 76

// Text renders the report as plain text (the mail's text part).
func (r *Report) Text() string {
	var b strings.Builder
	title := r.Title()
	b.WriteString(title + "\n" + strings.Repeat("=", utf8.RuneCountInString(title)) + "\n\n")
	b.WriteString(wrap(r.Headline(), "", textWidth) + "\n\n")
	for _, blk := range r.outline() {
		switch x := blk.(type) {
		case heading:
			b.WriteString(x.text + "\n" + strings.Repeat("-", utf8.RuneCountInString(x.text)) + "\n\n")
		case para:
			b.WriteString(wrap(textPara(x), "", textWidth) + "\n\n")
		case list:
			for i, it := range x.items {
				mark := "  - "
				if x.ordered {
					mark = padLeft(itoa(i+1)+". ", 4)
				}
				b.WriteString(wrapFirst(textPara(it), mark, "    ", textWidth) + "\n")
			}
			b.WriteString("\n")
		case table:
			writeTextTable(&b, x)
			b.WriteString("\n")
		case chartRef:
			// The text part has no charts: the tables say the same.
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

func textPara(p para) string {
	s := p.text
	if p.code != "" {
		s += "\n    $ " + p.code
	}
	return s
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func padLeft(s string, n int) string {
	for utf8.RuneCountInString(s) < n {
		s = " " + s
	}
	return s
}

func padRight(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// wrap fills text at width, each line after the first indented; lines of
// the text (a command) are kept.
func wrap(text, indent string, width int) string { return wrapFirst(text, "", indent, width) }

// wrapFirst is wrap with the first line starting with first.
func wrapFirst(text, first, indent string, width int) string {
	var out []string
	for li, line := range strings.Split(text, "\n") {
		if li > 0 && strings.HasPrefix(line, "    $ ") { // a command: never broken
			out = append(out, indent+strings.TrimPrefix(line, "    "))
			continue
		}
		cur := first
		if li > 0 {
			cur = indent
		}
		empty := true // no word on cur yet
		for _, w := range strings.Fields(line) {
			switch {
			case empty:
				cur += w
			case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(w) > width:
				out = append(out, cur)
				cur = indent + w
			default:
				cur += " " + w
			}
			empty = false
		}
		out = append(out, cur)
	}
	return strings.Join(out, "\n")
}

// writeTextTable aligns the columns; a last column too wide wraps under
// itself.
func writeTextTable(b *strings.Builder, t table) {
	widths := make([]int, len(t.head))
	for i, h := range t.head {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range t.rows {
		for i, c := range row {
			if n := utf8.RuneCountInString(c); n > widths[i] && i < len(row)-1 {
				widths[i] = n
			}
		}
	}
	last := len(t.head) - 1
	lead := 2
	for i := 0; i < last; i++ {
		lead += widths[i] + 2
	}
	lastW := textWidth - lead
	// Too little room left for the last column: it goes under each row.
	stacked := lastW < 15
	if stacked {
		lastW = textWidth - 6
	}
	isRule := false
	line := func(cells []string) {
		var s strings.Builder
		s.WriteString("  ")
		for i := 0; i < last; i++ {
			if i < len(t.right) && t.right[i] {
				s.WriteString(padLeft(cells[i], widths[i]))
			} else {
				s.WriteString(padRight(cells[i], widths[i]))
			}
			s.WriteString("  ")
		}
		if stacked {
			b.WriteString(strings.TrimRight(s.String(), " ") + "\n")
			if !isRule && cells[last] != "" {
				b.WriteString(wrapFirst(t.head[last]+": "+cells[last], "      ", "      ", textWidth) + "\n")
			}
			return
		}
		b.WriteString(strings.TrimRight(wrapFirst(cells[last], s.String(), strings.Repeat(" ", lead), lead+lastW), " ") + "\n")
	}
	head := append([]string(nil), t.head...)
	if stacked { // the last column is named on each row
		head[last] = ""
	}
	line(head)
	rule := make([]string, len(t.head))
	for i := range rule {
		n := widths[i]
		if i == last {
			n = min(max(widths[i], utf8.RuneCountInString(t.head[i])), lastW)
		}
		rule[i] = strings.Repeat("-", n)
	}
	isRule = true
	line(rule)
	isRule = false
	for _, row := range t.rows {
		line(row)
	}
}

// Markdown renders the report as Markdown.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# " + mdEscape(r.Title()) + "\n\n**" + mdEscape(r.Headline()) + "**\n\n")
	for _, blk := range r.outline() {
		switch x := blk.(type) {
		case heading:
			b.WriteString("## " + mdEscape(x.text) + "\n\n")
		case para:
			s := mdEscape(x.text)
			if x.strong {
				s = "**" + s + "**"
			}
			if x.code != "" {
				s += ": `" + x.code + "`"
			}
			b.WriteString(s + "\n\n")
		case list:
			for i, it := range x.items {
				mark := "- "
				if x.ordered {
					mark = itoa(i+1) + ". "
				}
				s := mdEscape(it.text)
				if it.code != "" {
					s += ": `" + it.code + "`"
				}
				b.WriteString(mark + s + "\n")
			}
			b.WriteString("\n")
		case table:
			cells := func(row []string) {
				b.WriteString("|")
				for _, c := range row {
					b.WriteString(" " + strings.ReplaceAll(mdEscape(c), "|", `\|`) + " |")
				}
				b.WriteString("\n")
			}
			cells(x.head)
			b.WriteString("|")
			for i := range x.head {
				if i < len(x.right) && x.right[i] {
					b.WriteString("---:|")
				} else {
					b.WriteString("---|")
				}
			}
			b.WriteString("\n")
			for _, row := range x.rows {
				cells(row)
			}
			b.WriteString("\n")
		case chartRef:
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// mdEscape escapes what Markdown would read as markup.
func mdEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", "[", `\[`, "]", `\]`)
	return r.Replace(s)
}
