package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"time"
)

// Chart is one chart of the report as a PNG image (mail clients drop SVG
// and scripts). Name is its Content-ID's local part; Alt says what it
// shows, for a reader with images off (the tables carry the figures).
type Chart struct {
	Name   string
	Alt    string
	Width  int
	Height int
	PNG    []byte
}

// ChartWidth is the charts' width in pixels, within the mail's 640.
const ChartWidth = 600

var (
	colReady   = color.RGBA{0x2e, 0x9e, 0x4f, 0xff}
	colNot     = color.RGBA{0xd6, 0x33, 0x2b, 0xff}
	colUnknown = color.RGBA{0xf0, 0xa2, 0x02, 0xff}
	colNone    = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	colGrid    = color.RGBA{0x88, 0x88, 0x88, 0xff}
	colBG      = color.RGBA{0xff, 0xff, 0xff, 0xff}
	colLine    = color.RGBA{0x1f, 0x5f, 0xbf, 0xff}
)

// Charts draws the report's charts, those it has data for, in the order
// the outline places them.
func (r *Report) Charts() ([]Chart, error) {
	var out []Chart
	add := func(name, alt string, img image.Image) error {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return fmt.Errorf("report %s: chart %s: %w", r.Week, name, err)
		}
		out = append(out, Chart{Name: name, Alt: alt, Width: img.Bounds().Dx(), Height: img.Bounds().Dy(), PNG: b.Bytes()})
		return nil
	}
	if r.Verdict.Known {
		alt := fmt.Sprintf("Verdict over %s, Monday to Sunday: green READY, red NOT READY, amber UNKNOWN, grey no data; READY %s of the known time, %d spell(s) not READY.",
			r.Week, pct(r.Verdict.ReadyShare), len(r.Verdict.Spells))
		if err := add("verdict", alt, r.verdictChart()); err != nil {
			return nil, err
		}
	}
	if len(r.Services.Rows) > 0 {
		var names []string
		for _, row := range r.Services.Rows {
			names = append(names, row.Service+" on "+row.Node)
		}
		alt := "Rounds per hour, a row per service and node (" + strings.Join(names, ", ") + "): green all passed, amber some failed, red all failed, grey no data."
		if err := add("services", alt, r.servicesChart()); err != nil {
			return nil, err
		}
	}
	if len(r.Disks.Trend) > 0 {
		alt := "Free disk space over the week, 0 to 100 %, a line per disk probe: "
		var parts []string
		for _, d := range r.Disks.Trend {
			parts = append(parts, fmt.Sprintf("%s on %s from %.1f %% to %.1f %%", d.Service, d.Node, d.First, d.Last))
		}
		if err := add("disks", alt+strings.Join(parts, ", ")+".", r.disksChart()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fill(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	b := img.Bounds()
	x0, y0, x1, y1 = max(x0, b.Min.X), max(y0, b.Min.Y), min(x1, b.Max.X), min(y1, b.Max.Y)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// dayTicks draws a thin line at each day's start.
func dayTicks(img *image.RGBA, left, width, y0, y1 int) {
	for d := 0; d <= 7; d++ {
		x := left + d*width/7
		if x >= left+width {
			x = left + width - 1
		}
		fill(img, x, y0, x+1, y1, colGrid)
	}
}

// weekX maps a time to x on a bar of width starting at left.
func (r *Report) weekX(t time.Time, left, width int) int {
	f := float64(t.Sub(r.From)) / float64(r.To.Sub(r.From))
	return left + int(f*float64(width)+0.5)
}

func verdictColour(v string) color.RGBA {
	switch v {
	case "READY":
		return colReady
	case "NOT READY":
		return colNot
	case "":
		return colNone
	}
	return colUnknown
}

// verdictChart is the week as a bar coloured by verdict, days marked.
func (r *Report) verdictChart() image.Image {
	const h = 36
	img := image.NewRGBA(image.Rect(0, 0, ChartWidth, h))
	fill(img, 0, 0, ChartWidth, h, colBG)
	left, width := 4, ChartWidth-8
	fill(img, left, 6, left+width, h-6, colNone)
	for _, s := range r.Verdict.Segments {
		fill(img, r.weekX(s.From, left, width), 6, max(r.weekX(s.To, left, width), r.weekX(s.From, left, width)+1), h-6, verdictColour(s.Verdict))
	}
	dayTicks(img, left, width, 2, h-2)
	return img
}

// servicesChart is a heat map: a row per service and node, a column per
// hour.
func (r *Report) servicesChart() image.Image {
	const rowH, gap = 8, 2
	rows := r.Services.Rows
	hours := max(r.Services.Hours, 1)
	h := len(rows)*(rowH+gap) + 8
	img := image.NewRGBA(image.Rect(0, 0, ChartWidth, h))
	fill(img, 0, 0, ChartWidth, h, colBG)
	left, width := 4, ChartWidth-8
	for i, row := range rows {
		y := 4 + i*(rowH+gap)
		for hr := 0; hr < hours; hr++ {
			x0, x1 := left+hr*width/hours, left+(hr+1)*width/hours
			c := colNone
			if hr < len(row.Hourly) {
				switch row.Hourly[hr] {
				case HourAllPassed:
					c = colReady
				case HourAllFailed:
					c = colNot
				case HourSomeFailed:
					c = colUnknown
				}
			}
			fill(img, x0, y, x1, y+rowH, c)
		}
	}
	dayTicks(img, left, width, 0, h)
	return img
}

// disksChart draws each disk probe's free space, 0 to 100 %.
func (r *Report) disksChart() image.Image {
	const h = 120
	img := image.NewRGBA(image.Rect(0, 0, ChartWidth, h))
	fill(img, 0, 0, ChartWidth, h, colBG)
	left, width, top, bottom := 4, ChartWidth-8, 6, h-6
	for _, pc := range []float64{0, 25, 50, 75, 100} {
		y := bottom - int(pc/100*float64(bottom-top))
		fill(img, left, y, left+width, y+1, colNone)
	}
	dayTicks(img, left, width, top, bottom)
	palette := []color.RGBA{colLine, colNot, colReady, colUnknown, {0x7b, 0x3f, 0xa0, 0xff}}
	for i, d := range r.Disks.Trend {
		c := palette[i%len(palette)]
		px, py := -1, -1
		for _, p := range d.Points {
			x := r.weekX(p.At, left, width)
			y := bottom - int(p.Value/100*float64(bottom-top))
			if px >= 0 {
				line(img, px, py, x, y, c)
			}
			fill(img, x-1, y-1, x+1, y+1, c)
			px, py = x, y
		}
	}
	return img
}

// line draws a 2 px line from (x0, y0) to (x1, y1).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := x1-x0, y1-y0
	n := max(abs(dx), abs(dy), 1)
	for i := 0; i <= n; i++ {
		x, y := x0+dx*i/n, y0+dy*i/n
		fill(img, x, y, x+2, y+2, c)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
