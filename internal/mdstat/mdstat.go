// Package mdstat reads Linux md RAID state from /proc/mdstat: each array,
// how many members it should have and how many are in sync, which have
// failed, and what it is doing (a recovery or resync is a rebuild; a
// check or repair is a scheduled scrub, not a fault).
package mdstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is one md array.
type Array struct {
	Name     string   `json:"name"`  // md0
	State    string   `json:"state"` // active, inactive
	Level    string   `json:"level"` // raid1; "" when inactive
	Devices  []string `json:"devices"`
	Failed   []string `json:"failed,omitempty"`   // (F)
	Spares   []string `json:"spares,omitempty"`   // (S)
	Members  int      `json:"members"`            // [n/m]: n
	Up       int      `json:"up"`                 // [n/m]: m
	Action   string   `json:"action,omitempty"`   // recovery, resync, reshape, check, repair
	Progress string   `json:"progress,omitempty"` // 22.5%, DELAYED, PENDING
}

// Degraded reports whether members are missing or failed, or the array is
// not running.
func (a Array) Degraded() bool {
	return a.State != "active" || a.Up < a.Members || len(a.Failed) > 0
}

// Rebuilding reports whether the array is rebuilding redundancy (not a
// scheduled check).
func (a Array) Rebuilding() bool {
	return a.Action == "recovery" || a.Action == "resync" || a.Action == "reshape"
}

// ReadFile parses the mdstat file at path (normally /proc/mdstat). A
// missing file means no md driver: no arrays.
func ReadFile(path string) ([]Array, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	arrays, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return arrays, nil
}

var (
	headRe   = regexp.MustCompile(`^(md[^ ]*) : (active|inactive)(?: \((?:read-only|auto-read-only)\))?(?: (raid\d+|linear|multipath|faulty))?((?: [^ ]+\[\d+\](?:\([A-Z]\))*)*)\s*$`)
	devRe    = regexp.MustCompile(`^([^\[]+)\[\d+\]((?:\([A-Z]\))*)$`)
	countRe  = regexp.MustCompile(`\[(\d+)/(\d+)\]`)
	actionRe = regexp.MustCompile(`\b(recovery|resync|reshape|check|repair)\s*=\s*(\d+(?:\.\d+)?%|DELAYED|PENDING)`)
)

// Parse reads mdstat text. A line it cannot read in an array's block is an
// error naming the line, so a format it does not know is never read as
// healthy.
func Parse(r io.Reader) ([]Array, error) {
	var out []Array
	var cur *Array
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		trim := strings.TrimSpace(text)
		switch {
		case strings.HasPrefix(text, "Personalities") || strings.HasPrefix(text, "unused devices"):
			cur = nil
		case strings.HasPrefix(text, "md"):
			m := headRe.FindStringSubmatch(text)
			if m == nil {
				return nil, fmt.Errorf("line %d: cannot read the array line %q", line, text)
			}
			a := Array{Name: m[1], State: m[2], Level: m[3]}
			for _, d := range strings.Fields(m[4]) {
				dm := devRe.FindStringSubmatch(d)
				if dm == nil {
					return nil, fmt.Errorf("line %d: cannot read the device %q", line, d)
				}
				a.Devices = append(a.Devices, dm[1])
				switch {
				case strings.Contains(dm[2], "(F)"):
					a.Failed = append(a.Failed, dm[1])
				case strings.Contains(dm[2], "(S)"):
					a.Spares = append(a.Spares, dm[1])
				}
			}
			if a.State == "inactive" {
				a.Members = len(a.Devices)
			}
			out = append(out, a)
			cur = &out[len(out)-1]
		case trim == "":
		case cur != nil:
			if m := countRe.FindStringSubmatch(text); m != nil && strings.Contains(text, "blocks") {
				cur.Members, _ = strconv.Atoi(m[1])
				cur.Up, _ = strconv.Atoi(m[2])
			}
			if m := actionRe.FindStringSubmatch(text); m != nil {
				cur.Action, cur.Progress = m[1], m[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, a := range out {
		if a.State == "active" && a.Members == 0 && a.Level != "linear" && a.Level != "raid0" {
			return nil, fmt.Errorf("%s: no [members/up] count found", a.Name)
		}
	}
	return out, nil
}
