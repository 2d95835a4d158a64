package store

// The compact form of a stored result, read by this release and written by
// none yet. A result is written ten thousand times a day and kept up to
// verifier.keep_results times per probe; as JSON it is 190-360 bytes, half
// of it names (the node and probe, which the bucket already says, and each
// field's name) and the start time as text. The compact form is a version
// byte and the fields in a fixed order, numbers as varints, strings
// length-prefixed: about a third of the size (the lab's mail result: 111
// bytes against 357).
//
// A change of record form takes two releases, so that a node can go back
// to the release before (TestModules runs the previous release on a store
// the current one wrote): this one reads both forms and still writes JSON;
// the next, whose previous release is this one, writes the compact form
// (encodeResult, used by the tests until then).
//
//	0x01                      the form's version (JSON starts with '{')
//	flags                     byte: 1 OK, 2 the start time is zero
//	start                     varint, Unix nanoseconds (absent if flag 2)
//	duration_ms               varint
//	kind, message, failed_phase   strings
//	phases                    uvarint count, then each: name string,
//	                          ms varint, ok byte (0 or 1), error string
//	values                    uvarint count, then each: key, value strings,
//	                          keys in order
//
// A string is a uvarint length and its bytes.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

const (
	resultCompact = 0x01

	resultOK        = 1
	resultZeroStart = 2
)

// encodeResult is r in the compact form. r.Node and r.Probe are not in it:
// they are the names of the buckets it is stored in. Not written yet (see
// above): PutResults writes JSON.
func encodeResult(r StoredResult) []byte {
	b := make([]byte, 0, 64+len(r.Message)+24*len(r.Phases))
	b = append(b, resultCompact)
	var flags byte
	if r.OK {
		flags |= resultOK
	}
	if r.Start.IsZero() {
		flags |= resultZeroStart
	}
	b = append(b, flags)
	if !r.Start.IsZero() {
		b = binary.AppendVarint(b, r.Start.UnixNano())
	}
	b = binary.AppendVarint(b, r.DurationMS)
	b = appendString(b, r.Kind)
	b = appendString(b, r.Message)
	b = appendString(b, r.FailedPhase)
	b = binary.AppendUvarint(b, uint64(len(r.Phases)))
	for _, p := range r.Phases {
		b = appendString(b, p.Name)
		b = binary.AppendVarint(b, p.MS)
		if p.OK {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = appendString(b, p.Error)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Values)))
	for _, k := range slices.Sorted(maps.Keys(r.Values)) {
		b = appendString(b, k)
		b = appendString(b, r.Values[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeResult decodes a stored result of probe on node, in either form.
func decodeResult(node, probe, k, v []byte) (StoredResult, error) {
	var r StoredResult
	var err error
	if len(v) > 0 && v[0] == resultCompact {
		r, err = decodeCompact(v[1:])
		r.Node, r.Probe = string(node), string(probe)
	} else {
		err = json.Unmarshal(v, &r)
	}
	if err != nil {
		return StoredResult{}, fmt.Errorf("result %s/%s %x: %w", node, probe, k, err)
	}
	return r, nil
}

// errShort is a compact result that ends before its last field.
var errShort = errors.New("compact record cut short")

// compactReader reads the fields of a compact result; the first error
// sticks, and every read after it gives zero values.
type compactReader struct {
	b   []byte
	err error
}

func (c *compactReader) byte() byte {
	if c.err != nil || len(c.b) == 0 {
		c.fail(errShort)
		return 0
	}
	x := c.b[0]
	c.b = c.b[1:]
	return x
}

func (c *compactReader) varint() int64 {
	if c.err != nil {
		return 0
	}
	x, n := binary.Varint(c.b)
	if n <= 0 {
		c.fail(errShort)
		return 0
	}
	c.b = c.b[n:]
	return x
}

func (c *compactReader) uvarint() uint64 {
	if c.err != nil {
		return 0
	}
	x, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.fail(errShort)
		return 0
	}
	c.b = c.b[n:]
	return x
}

// count reads a number of items that each take at least min bytes, so
// that a damaged count cannot make the decoder allocate more than the
// record could hold.
func (c *compactReader) count(min int) int {
	n := c.uvarint()
	if c.err == nil && n > uint64(len(c.b)/min) {
		c.fail(fmt.Errorf("count %d does not fit in the record's %d bytes left", n, len(c.b)))
		return 0
	}
	return int(n)
}

func (c *compactReader) string() string {
	n := c.uvarint()
	if c.err != nil {
		return ""
	}
	if n > uint64(len(c.b)) {
		c.fail(errShort)
		return ""
	}
	s := string(c.b[:n])
	c.b = c.b[n:]
	return s
}

func (c *compactReader) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func decodeCompact(b []byte) (StoredResult, error) {
	c := &compactReader{b: b}
	var r StoredResult
	flags := c.byte()
	if flags&^(resultOK|resultZeroStart) != 0 {
		c.fail(fmt.Errorf("unknown flags %#x", flags))
	}
	r.OK = flags&resultOK != 0
	if flags&resultZeroStart == 0 {
		r.Start = time.Unix(0, c.varint()).UTC()
	}
	r.DurationMS = c.varint()
	r.Kind = c.string()
	r.Message = c.string()
	r.FailedPhase = c.string()
	if n := c.count(4); n > 0 { // a phase: at least 4 bytes
		r.Phases = make([]PhaseTiming, n)
		for i := range r.Phases {
			p := &r.Phases[i]
			p.Name = c.string()
			p.MS = c.varint()
			switch ok := c.byte(); ok {
			case 0, 1:
				p.OK = ok == 1
			default:
				c.fail(fmt.Errorf("phase %d: ok is %d", i, ok))
			}
			p.Error = c.string()
		}
	}
	if n := c.count(2); n > 0 { // a value: at least 2 bytes
		r.Values = make(map[string]string, n)
		prev := ""
		for i := 0; i < n; i++ {
			k, v := c.string(), c.string()
			if c.err == nil && i > 0 && k <= prev {
				c.fail(fmt.Errorf("value keys out of order at %q", k))
			}
			prev = k
			r.Values[k] = v
		}
	}
	if c.err == nil && len(c.b) > 0 {
		c.fail(fmt.Errorf("%d bytes after the last field", len(c.b)))
	}
	if c.err != nil {
		return StoredResult{}, c.err
	}
	return r, nil
}
