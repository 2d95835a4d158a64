package failover

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Time layouts of the texts.
const (
	timeSec = "2006-01-02 15:04:05 MST"
	timeMS  = "2006-01-02 15:04:05.000 MST"
)

func fmtTime(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(layout)
}

// fmtDur prints a duration for a person: milliseconds under a second,
// tenths under a minute, whole seconds above.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// fmtSize prints a size in the decimal units of disk labels.
func fmtSize(b uint64) string {
	switch {
	case b == 0:
		return "-"
	case b >= 1e12:
		return fmt.Sprintf("%.1f TB", float64(b)/1e12)
	case b >= 1e9:
		return fmt.Sprintf("%.0f GB", float64(b)/1e9)
	}
	return fmt.Sprintf("%.0f MB", float64(b)/1e6)
}

// kindText is the plan's kind in words.
func (p *Plan) kindText() string {
	if p.Planned {
		return "planned swap"
	}
	return "unplanned failover"
}

// who is the plan's second line: where and when it was made.
func (p *Plan) who() string {
	s := fmt.Sprintf("made %s on %s (the %s; disk set %s on %s", fmtTime(p.At, timeSec), p.Node, p.Role, or(p.DiskSet, "?"), machine(p.Machine, p.Node))
	if p.HomeMachine != "" {
		s += ", home " + p.HomeMachine
	}
	s += ")"
	if p.Peer != "" {
		s += fmt.Sprintf("; peer %s on %s", p.Peer, machine(p.PeerMachine, p.Peer))
	} else {
		s += "; no peer"
	}
	return s
}

// forcedText is the banner of a forced plan.
func (p *Plan) forcedText() string {
	return "FORCED: --force overrode: " + strings.Join(p.Overrides, "; ") + ". The failover record keeps the override."
}

// disksTitle names the disk set the table lists.
func (p *Plan) disksTitle() string {
	return fmt.Sprintf("disk set %s (%s, the %s)", or(p.DiskSet, "?"), p.Node, p.Role)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (d Disk) locate() string {
	if d.LocateLit {
		return "lit"
	}
	return "-"
}

func (d Disk) arrays() string {
	if len(d.Arrays) == 0 {
		return "-"
	}
	return strings.Join(d.Arrays, ", ")
}

// Text renders the plan for a terminal.
func (p *Plan) Text() string {
	var b strings.Builder
	c := p.cast()
	fmt.Fprintf(&b, "FAILOVER PLAN %s: %s\n", p.ID, p.kindText())
	fmt.Fprintln(&b, p.who())
	if p.Forced {
		fmt.Fprintf(&b, "\n!! %s\n", p.forcedText())
	}
	fmt.Fprintf(&b, "\nverdict: %s\n", p.Verdict)
	for _, r := range p.Blocking {
		fmt.Fprintf(&b, "  blocking: %s\n", r)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}

	fmt.Fprintf(&b, "\nSTEPS\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%2d. %s\n", i+1, s.Title)
		for _, d := range s.Detail {
			fmt.Fprintf(&b, "    %s\n", d)
		}
	}

	fmt.Fprintf(&b, "\nDISKS of %s\n", p.disksTitle())
	if len(p.Disks) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  DISK\tSERIAL\tMODEL\tSIZE\tBAY\tLOCATE LED\tBY-PATH\tBY-ID\tARRAYS")
		for _, d := range p.Disks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, dash(d.Serial), dash(d.Model), fmtSize(d.SizeBytes),
				dash(d.Bay), d.locate(), dash(d.ByPath), dash(d.ByID), d.arrays())
		}
		tw.Flush()
	}
	if p.DisksNote != "" {
		fmt.Fprintf(&b, "  %s\n", p.DisksNote)
	} else if len(p.Disks) == 0 {
		fmt.Fprintf(&b, "  none named\n")
	}

	fmt.Fprintf(&b, "\nCONSOLE of %s at boot\n", c.target)
	for _, l := range p.Console {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if len(p.Addresses) > 0 {
		fmt.Fprintf(&b, "\nSERVICE ADDRESSES (they come up on %s)\n", c.target)
		for _, a := range p.Addresses {
			fmt.Fprintf(&b, "  %s\n", a)
		}
	}
	fmt.Fprintf(&b, "\nAFTERWARDS\n")
	for _, a := range p.After {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	fmt.Fprintf(&b, "\nSAFE MODE\n")
	for _, s := range p.SafeMode {
		fmt.Fprintf(&b, "  - %s\n", s)
	}
	return b.String()
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(dash(s), "|", `\|`)
}

// Markdown renders the plan as Markdown: the same content as Text.
func (p *Plan) Markdown() string {
	var b strings.Builder
	c := p.cast()
	fmt.Fprintf(&b, "# Failover plan %s: %s\n\n", p.ID, p.kindText())
	if p.Forced {
		fmt.Fprintf(&b, "> **%s**\n\n", p.forcedText())
	}
	fmt.Fprintf(&b, "%s.\n\n", capital(p.who()))
	fmt.Fprintf(&b, "- verdict: **%s**\n", p.Verdict)
	for _, r := range p.Blocking {
		fmt.Fprintf(&b, "- blocking: %s\n", r)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "- warning: %s\n", w)
	}

	fmt.Fprintf(&b, "\n## Steps\n\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%d. **%s**\n", i+1, s.Title)
		for _, d := range s.Detail {
			fmt.Fprintf(&b, "   - %s\n", d)
		}
	}

	fmt.Fprintf(&b, "\n## Disks of %s\n\n", p.disksTitle())
	if len(p.Disks) > 0 {
		b.WriteString("| disk | serial | model | size | bay | locate LED | by-path | by-id | arrays |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, d := range p.Disks {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(d.Name), mdCell(d.Serial), mdCell(d.Model),
				fmtSize(d.SizeBytes), mdCell(d.Bay), d.locate(), mdCell(d.ByPath), mdCell(d.ByID), mdCell(d.arrays()))
		}
		if p.DisksNote != "" {
			b.WriteString("\n")
		}
	}
	if p.DisksNote != "" {
		fmt.Fprintf(&b, "%s\n", p.DisksNote)
	} else if len(p.Disks) == 0 {
		b.WriteString("None named.\n")
	}

	fmt.Fprintf(&b, "\n## Console of %s at boot\n\n```\n", c.target)
	for _, l := range p.Console {
		fmt.Fprintf(&b, "%s\n", l)
	}
	b.WriteString("```\n")
	if len(p.Addresses) > 0 {
		fmt.Fprintf(&b, "\n## Service addresses (they come up on %s)\n\n", c.target)
		for _, a := range p.Addresses {
			fmt.Fprintf(&b, "- %s\n", a)
		}
	}
	b.WriteString("\n## Afterwards\n\n")
	for _, a := range p.After {
		fmt.Fprintf(&b, "- %s\n", a)
	}
	b.WriteString("\n## Safe mode\n\n")
	for _, s := range p.SafeMode {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	return b.String()
}
