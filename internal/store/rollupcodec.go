package store

// The compact form of a stored rollup. A node keeps an hourly rollup of
// each probe of each node for 40 days: 28,800 of them for 15 probes on 2
// nodes, which as JSON (about 290 bytes each, most of it field names and
// times as text) made the history the largest part of a long-running
// agent's store, and the store's file is mapped: the pages the agent has
// touched count in its resident memory. The compact form is a version byte
// and the fields in a fixed order, numbers as varints, strings
// length-prefixed: about a third of the size (an hour of the lab's mail
// probe: 126 bytes against 402).
//
// Unlike a result's (resultcodec.go), the rollup's form can change in one
// release: the release before this one (0.1.0, the one a node goes back
// to) keeps no rollups and never opens their buckets. Records written as
// JSON by the builds in between are still read.
//
//	0x01                the form's version (JSON starts with '{')
//	flags               byte: 1 damaged
//	kind, node, probe   strings
//	start               time
//	count, failures     varints
//	latency             uvarint n (trailing empty buckets left out), then
//	                    n varints
//	min_ms, max_ms, sum_ms   varints
//	first, last         times, relative to start
//	failed_phases       uvarint count, then each: name string, varint;
//	                    names in order
//	values              uvarint count, then each: key string, min, max,
//	                    last (float64 bits, 8 bytes little-endian), last_at
//	                    (time, relative to start); keys in order
//
// A string is a uvarint length and its bytes. A time is a byte, 0 for the
// zero time, else 1 followed by its Unix seconds (less the start's, when
// relative to start) as a varint and its nanoseconds as a uvarint.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

const (
	rollupCompact = 0x01

	rollupDamaged = 1
)

// encodeRollup is r in the compact form.
func encodeRollup(r Rollup) []byte {
	b := make([]byte, 0, 96+len(r.Node)+len(r.Probe)+32*len(r.Values))
	b = append(b, rollupCompact)
	var flags byte
	if r.Damaged {
		flags |= rollupDamaged
	}
	b = append(b, flags)
	b = appendString(b, r.Kind)
	b = appendString(b, r.Node)
	b = appendString(b, r.Probe)
	b = appendTime(b, r.Start, 0)
	base := r.Start.Unix()
	b = binary.AppendVarint(b, r.Count)
	b = binary.AppendVarint(b, r.Failures)
	n := len(r.Latency)
	for n > 0 && r.Latency[n-1] == 0 {
		n--
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, c := range r.Latency[:n] {
		b = binary.AppendVarint(b, c)
	}
	b = binary.AppendVarint(b, r.MinMS)
	b = binary.AppendVarint(b, r.MaxMS)
	b = binary.AppendVarint(b, r.SumMS)
	b = appendTime(b, r.First, base)
	b = appendTime(b, r.Last, base)
	b = binary.AppendUvarint(b, uint64(len(r.FailedPhases)))
	for _, k := range slices.Sorted(maps.Keys(r.FailedPhases)) {
		b = appendString(b, k)
		b = binary.AppendVarint(b, r.FailedPhases[k])
	}
	b = binary.AppendUvarint(b, uint64(len(r.Values)))
	for _, k := range slices.Sorted(maps.Keys(r.Values)) {
		v := r.Values[k]
		b = appendString(b, k)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Min))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Max))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Last))
		b = appendTime(b, v.LastAt, base)
	}
	return b
}

// appendTime appends t, its seconds less base.
func appendTime(b []byte, t time.Time, base int64) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix()-base)
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// time reads what appendTime wrote with base.
func (c *compactReader) time(base int64) time.Time {
	switch c.byte() {
	case 0:
		return time.Time{}
	case 1:
	default:
		c.fail(fmt.Errorf("a time's first byte is neither 0 nor 1"))
		return time.Time{}
	}
	s, ns := c.varint(), c.uvarint()
	if c.err == nil && ns >= 1e9 {
		c.fail(fmt.Errorf("a time's nanoseconds (%d) are not under a second", ns))
	}
	if c.err != nil {
		return time.Time{}
	}
	return time.Unix(base+s, int64(ns)).UTC()
}

func (c *compactReader) float() float64 {
	if c.err != nil || len(c.b) < 8 {
		c.fail(errShort)
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(c.b))
	c.b = c.b[8:]
	return x
}

// decodeRollup decodes a stored rollup in either form.
func decodeRollup(v []byte) (Rollup, error) {
	var r Rollup
	if len(v) > 0 && v[0] == rollupCompact {
		return decodeCompactRollup(v[1:])
	}
	err := json.Unmarshal(v, &r)
	return r, err
}

func decodeCompactRollup(b []byte) (Rollup, error) {
	c := &compactReader{b: b}
	var r Rollup
	flags := c.byte()
	if flags&^rollupDamaged != 0 {
		c.fail(fmt.Errorf("unknown flags %#x", flags))
	}
	r.Damaged = flags&rollupDamaged != 0
	r.Kind, r.Node, r.Probe = c.string(), c.string(), c.string()
	r.Start = c.time(0)
	base := r.Start.Unix()
	r.Count, r.Failures = c.varint(), c.varint()
	n := c.uvarint()
	if c.err == nil && n > uint64(len(r.Latency)) {
		c.fail(fmt.Errorf("latency histogram has %d buckets, at most %d", n, len(r.Latency)))
	}
	for i := 0; c.err == nil && i < int(n); i++ {
		r.Latency[i] = c.varint()
	}
	r.MinMS, r.MaxMS, r.SumMS = c.varint(), c.varint(), c.varint()
	r.First, r.Last = c.time(base), c.time(base)
	if k := c.count(2); k > 0 {
		r.FailedPhases = make(map[string]int64, k)
		for i := 0; i < k && c.err == nil; i++ {
			name := c.string()
			r.FailedPhases[name] = c.varint()
		}
	}
	if k := c.count(26); k > 0 {
		r.Values = make(map[string]ValueStat, k)
		for i := 0; i < k && c.err == nil; i++ {
			key := c.string()
			v := ValueStat{Min: c.float(), Max: c.float(), Last: c.float()}
			v.LastAt = c.time(base)
			r.Values[key] = v
		}
	}
	if c.err == nil && len(c.b) != 0 {
		c.fail(fmt.Errorf("%d bytes after the last field", len(c.b)))
	}
	if c.err != nil {
		return Rollup{}, fmt.Errorf("compact rollup: %w", c.err)
	}
	return r, nil
}
