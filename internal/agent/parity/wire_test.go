package parity

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// manyPackages replaces the packages of inv with n generated ones, about as
// varied as Debian's: names of random syllables with the usual prefixes and
// suffixes, versions with epochs, revisions and security updates, so that
// they compress about as well as a real status file (Debian 12's main
// archive, 63,000 packages: 116 bytes each in JSON, 12.7 gzipped).
func manyPackages(inv *inventory.Inventory, n int) *inventory.Inventory {
	r := rand.New(rand.NewPCG(5, 30000))
	syl := []string{"ba", "co", "de", "fi", "gu", "ha", "jo", "ki", "lu", "ma", "ne", "po", "qu", "ri", "so", "tu", "vi", "wa", "xo", "ze", "str", "pl", "gr", "th"}
	pre := []string{"", "", "", "lib", "lib", "python3-", "golang-", "node-", "r-cran-", "libghc-", "fonts-", "ruby-"}
	suf := []string{"", "", "", "-dev", "-doc", "-common", "-data", "-utils", "-bin", "1", "2", "6", "-perl"}
	out := *inv
	out.Packages = make([]inventory.Package, 0, n)
	seen := map[string]bool{}
	for len(out.Packages) < n {
		var b strings.Builder
		b.WriteString(pre[r.IntN(len(pre))])
		for k := 1 + r.IntN(4); k > 0; k-- {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		src := b.String()
		b.WriteString(suf[r.IntN(len(suf))])
		name := b.String()
		if seen[name] {
			continue
		}
		seen[name] = true
		v := fmt.Sprintf("%d.%d.%d-%d", r.IntN(30), r.IntN(100), r.IntN(200), 1+r.IntN(12))
		switch r.IntN(6) {
		case 0:
			v = fmt.Sprintf("%d:%s", 1+r.IntN(3), v)
		case 1:
			v += fmt.Sprintf("+deb12u%d", 1+r.IntN(9))
		case 2:
			v += fmt.Sprintf("+b%d", 1+r.IntN(4))
		}
		arch := "amd64"
		if r.IntN(4) == 0 {
			arch = "all"
		}
		p := inventory.Package{Name: name, Version: v, Arch: arch, Status: "install ok installed"}
		if src != name {
			p.Source = src
		}
		out.Packages = append(out.Packages, p)
	}
	return &out
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fetchFrom runs the inventory handler of a on one request body and returns
// the answer's bytes.
func fetchFrom(t *testing.T, a *testParity, body []byte) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	a.HandleInventoryFetch(rec, httptest.NewRequest(http.MethodPost, "/v1/inventory/fetch", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("inventory fetch: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// readAsProtocol2 reads an answer the way agents before gzip do.
func readAsProtocol2(t *testing.T, b []byte) *peer.InventoryReply {
	t.Helper()
	env, err := peer.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("a protocol-2 agent cannot read the answer: %v", err)
	}
	rep, err := env.Inventory()
	if err != nil {
		t.Fatalf("a protocol-2 agent cannot read the inventory: %v", err)
	}
	return rep
}

func TestInventoryOf30000PackagesFits(t *testing.T) {
	p, s := fixturePair(t)
	big := manyPackages(p, 30000)
	a, _ := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, big, s)
	slim := slimInventory(big, big.Hardware.Modaliases())

	// Plain, the inventory is far over the limit: what this is about.
	plain, _ := json.Marshal(slim)
	if _, err := peer.Encode(peer.TypeInventory, "node-p", peer.InventoryReply{Inventory: slim}); err == nil {
		t.Fatalf("a plain inventory of 30,000 packages (%d bytes) fits in a message: the test proves nothing", len(plain))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	if per := float64(gz.Len()) / 30000; per < 12 {
		t.Fatalf("the generated packages gzip to %.1f bytes each, less than Debian's (12.7): too easy", per)
	}

	// This version asks for it gzipped: one message, read back whole.
	ask, err := peer.Encode(peer.TypeInventoryRequest, "node-s", inventoryAsk{InventoryRequest: peer.InventoryRequest{}, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	ans := fetchFrom(t, a, ask)
	t.Logf("30,000 packages: %d bytes of JSON, an answer of %d bytes (limit %d)", len(plain), len(ans), peer.MaxMessageSize)
	if len(ans) > peer.MaxMessageSize*3/4 {
		t.Errorf("the answer is %d bytes: less than a quarter of the limit left", len(ans))
	}
	rep, err := readInventoryAnswer(bytes.NewReader(ans), MaxInventoryJSON)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Inventory == nil || len(rep.Inventory.Packages) != 30000 || jsonOf(t, rep.Inventory) != jsonOf(t, slim) {
		t.Fatalf("the inventory read back differs from the one sent (%d packages)", len(rep.Inventory.Packages))
	}

	// An agent of protocol 2 without gzip asks as before: it reads the
	// answer, and is told why there is no inventory in it.
	old, err := peer.Encode(peer.TypeInventoryRequest, "node-s", peer.InventoryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	orep := readAsProtocol2(t, fetchFrom(t, a, old))
	if orep.Inventory != nil || !strings.Contains(orep.Error, "30000 packages") || !strings.Contains(orep.Error, "update sentry on the asking node") {
		t.Fatalf("an older asker: inventory %v, error %q", orep.Inventory != nil, orep.Error)
	}
}

func TestInventoryAnswerCompatible(t *testing.T) {
	p, s := fixturePair(t)
	a, _ := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, p, s)
	want := jsonOf(t, slimInventory(p, p.Hardware.Modaliases()))

	// An older asker gets the inventory plain, as protocol 2 has it.
	old, _ := peer.Encode(peer.TypeInventoryRequest, "node-s", peer.InventoryRequest{})
	if rep := readAsProtocol2(t, fetchFrom(t, a, old)); rep.Inventory == nil || jsonOf(t, rep.Inventory) != want {
		t.Fatalf("an older asker did not get the plain inventory: %+v", rep)
	}
	// This version reads an older agent's plain answer.
	plain, err := peer.Encode(peer.TypeInventory, "node-p", peer.InventoryReply{Inventory: slimInventory(p, p.Hardware.Modaliases())})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := readInventoryAnswer(bytes.NewReader(plain), MaxInventoryJSON); err != nil || rep.Inventory == nil || jsonOf(t, rep.Inventory) != want {
		t.Fatalf("reading a plain answer: %v", err)
	}
	// A gzipped inventory gets the plain one's checks, and a bound.
	bad := *p
	bad.SchemaVersion = inventory.SchemaVersion + 1
	b, err := encodeInventoryAnswer("node-p", &bad, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readInventoryAnswer(bytes.NewReader(b), MaxInventoryJSON); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("a gzipped inventory of a newer schema: %v", err)
	}
	b, _ = encodeInventoryAnswer("node-p", p, "", true)
	if _, err := readInventoryAnswer(bytes.NewReader(b), 1000); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Errorf("a gzipped inventory over the bound: %v", err)
	}
	// The newest take's error travels with the inventory.
	b, _ = encodeInventoryAnswer("node-p", nil, "status: truncated", true)
	if rep, err := readInventoryAnswer(bytes.NewReader(b), MaxInventoryJSON); err != nil || rep.Error != "status: truncated" || rep.Inventory != nil {
		t.Errorf("an error answer: %+v, %v", rep, err)
	}
}
