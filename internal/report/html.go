package report

import (
	"encoding/base64"
	"fmt"
	"html"
	"strings"
)

// ImageSource says where the HTML finds a chart: "cid:NAME@sentry" in a
// mail (CIDSource), a data: URL in a file (DataSource).
type ImageSource func(c Chart) string

// CIDSource refers to the charts by Content-ID, as the mail carries them.
func CIDSource(c Chart) string { return "cid:" + ContentID(c) }

// ContentID is the chart's Content-ID (without the angle brackets).
func ContentID(c Chart) string { return c.Name + "@sentry.report" }

// DataSource embeds the charts as data: URLs, for an HTML file.
func DataSource(c Chart) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG)
}

// HTML renders the report as one HTML page at most 640 px wide, styled
// inline (mail clients drop style sheets), readable with images off: each
// chart has its alt text and the tables carry the figures. charts are
// those Charts returned; src says how to refer to them.
func (r *Report) HTML(charts []Chart, src ImageSource) string {
	byName := map[string]Chart{}
	for _, c := range charts {
		byName[c.Name] = c
	}
	e := html.EscapeString
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + e(r.Title()) + `</title></head>
<body style="margin:0;padding:0;background:#ffffff;">
<div style="max-width:640px;margin:0 auto;padding:8px;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.4;color:#222222;overflow-wrap:anywhere;word-wrap:break-word;">
`)
	colour := "#555555"
	switch r.Verdict.Now {
	case "READY":
		colour = "#1e7a3a"
	case "NOT READY":
		colour = "#b3261e"
	}
	fmt.Fprintf(&b, "<h1 style=\"font-size:20px;margin:8px 0;\">%s</h1>\n", e(r.Title()))
	fmt.Fprintf(&b, "<p id=\"verdict\" style=\"font-size:18px;font-weight:bold;color:%s;margin:8px 0;\">%s</p>\n", colour, e(r.Headline()))
	for _, blk := range r.outline() {
		switch x := blk.(type) {
		case heading:
			fmt.Fprintf(&b, "<h2 style=\"font-size:16px;margin:18px 0 6px;border-bottom:1px solid #cccccc;\">%s</h2>\n", e(x.text))
		case para:
			s := e(x.text)
			if x.strong {
				s = "<strong>" + s + "</strong>"
			}
			if x.code != "" {
				s += ": " + htmlCode(x.code)
			}
			fmt.Fprintf(&b, "<p style=\"margin:6px 0;\">%s</p>\n", s)
		case list:
			tag := "ul"
			if x.ordered {
				tag = "ol"
			}
			fmt.Fprintf(&b, "<%s style=\"margin:6px 0;padding-left:22px;\">\n", tag)
			for _, it := range x.items {
				s := e(it.text)
				if it.code != "" {
					s += "<br>" + htmlCode(it.code)
				}
				fmt.Fprintf(&b, "<li style=\"margin:3px 0;\">%s</li>\n", s)
			}
			fmt.Fprintf(&b, "</%s>\n", tag)
		case table:
			b.WriteString("<table role=\"table\" cellpadding=\"3\" cellspacing=\"0\" style=\"width:100%;border-collapse:collapse;font-size:12px;table-layout:auto;\">\n<tr>")
			for i, h := range x.head {
				fmt.Fprintf(&b, "<th style=\"text-align:%s;border-bottom:1px solid #999999;\">%s</th>", align(x, i), e(h))
			}
			b.WriteString("</tr>\n")
			for _, row := range x.rows {
				b.WriteString("<tr>")
				for i, c := range row {
					fmt.Fprintf(&b, "<td style=\"text-align:%s;border-bottom:1px solid #eeeeee;vertical-align:top;\">%s</td>", align(x, i), e(c))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</table>\n")
		case chartRef:
			c, ok := byName[x.name]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "<p style=\"margin:6px 0;\"><img src=\"%s\" alt=\"%s\" width=\"%d\" height=\"%d\" style=\"display:block;max-width:100%%;height:auto;border:0;\"></p>\n",
				e(src(c)), e(c.Alt), c.Width, c.Height)
		}
	}
	b.WriteString("</div>\n</body></html>\n")
	return b.String()
}

func align(t table, i int) string {
	if i < len(t.right) && t.right[i] {
		return "right"
	}
	return "left"
}

func htmlCode(s string) string {
	return "<code style=\"font-family:Consolas,Menlo,monospace;background:#f2f2f2;padding:1px 3px;\">" + html.EscapeString(s) + "</code>"
}
