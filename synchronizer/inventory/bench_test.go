package inventory

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// bigStatus repeats the host's status file under renamed packages until it
// holds 3,000 packages or more, as bench/inventorybench does.
func bigStatus(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/host-status")
	if err != nil {
		b.Fatal(err)
	}
	out := append([]byte(nil), data...)
	for c := 1; bytes.Count(out, []byte("\nPackage: "))+1 < 3000; c++ {
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			if rest, ok := bytes.CutPrefix(line, []byte("Package: ")); ok {
				line = fmt.Appendf(nil, "Package: %s-c%d\n", bytes.TrimSpace(rest), c)
			}
			out = append(out, line...)
		}
	}
	return out
}

func BenchmarkParseStatus(b *testing.B) {
	data := bigStatus(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pkgs, err := ParseStatus("status", data)
		if err != nil || len(pkgs) < 3000 {
			b.Fatal(len(pkgs), err)
		}
	}
}

func BenchmarkModulesFor(b *testing.B) {
	k, err := ReadKernel("testdata/nodes/s/lib/modules/6.12.9-amd64")
	if err != nil {
		b.Fatal(err)
	}
	m := k.Matcher()
	for i := 0; i < b.N; i++ {
		if got := m.ModulesFor("pci:v00008086d00001521sv00008086sd00000001bc02sc00i00"); len(got) != 1 {
			b.Fatal(got)
		}
	}
}
