package bootcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/hwid"
)

func put(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Debian's installer writes this for a server with a static address.
const debianInterfaces = `# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
allow-hotplug enp3s0
iface enp3s0 inet static
	address 192.168.1.10/24
	gateway 192.168.1.1
`

func TestCoverage(t *testing.T) {
	otherSame := []hwid.NIC{{Name: "enp3s0", MAC: "02:00:00:00:0b:01"}, {Name: "enp4s0", MAC: "02:00:00:00:0b:02"}}
	otherDiff := []hwid.NIC{{Name: "eno1", MAC: "02:00:00:00:0b:01"}}
	cases := []struct {
		name    string
		files   map[string]string
		other   []hwid.NIC
		method  string
		covered bool
		detail  string
	}{
		{"networkd", map[string]string{"etc/systemd/network/10-lan.network": "[Match]\nMACAddress=02:00:00:00:0a:01\n[Network]\nAddress=192.0.2.1/24\n"},
			otherDiff, "systemd-networkd", true, "1 .network file(s), adapted by MAC at boot"},
		{"ifupdown, the other machine names its NIC otherwise", map[string]string{"etc/network/interfaces": debianInterfaces},
			otherDiff, "ifupdown", false, "ifupdown configures enp3s0 by name, and the other machine has no NIC of that name (it has eno1)"},
		{"ifupdown, same names", map[string]string{"etc/network/interfaces": debianInterfaces},
			otherSame, "ifupdown", true, "exist on the other machine too"},
		{"ifupdown, other machine unknown", map[string]string{"etc/network/interfaces": debianInterfaces},
			nil, "ifupdown", false, "not known yet"},
		{"ifupdown through interfaces.d", map[string]string{
			"etc/network/interfaces":         "auto lo\niface lo inet loopback\nsource-directory interfaces.d\n",
			"etc/network/interfaces.d/bond0": "auto bond0\niface bond0 inet static\n  address 10.0.0.2/24\n",
			"etc/network/interfaces.d/x.bak": "iface ignored inet dhcp\n",
		}, otherSame, "ifupdown", false, "configures bond0 by name"},
		{"NetworkManager", map[string]string{"etc/NetworkManager/system-connections/Wired.nmconnection": "[connection]\n"},
			otherSame, "NetworkManager", false, "does not adapt"},
		{"nothing", map[string]string{"etc/network/interfaces": "auto lo\niface lo inet loopback\n"},
			otherSame, "", false, "nothing configures a NIC"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, body := range c.files {
				put(t, root, rel, body)
			}
			got, err := NetworkCoverage(root, c.other)
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != c.method || got.Covered != c.covered || !strings.Contains(got.Detail, c.detail) {
				t.Fatalf("got %+v\nwant method %q covered %v detail containing %q", got, c.method, c.covered, c.detail)
			}
		})
	}
}

func TestCoverageSourceLoop(t *testing.T) {
	root := t.TempDir()
	put(t, root, "etc/network/interfaces", "source /etc/network/interfaces\n")
	if _, err := NetworkCoverage(root, nil); err == nil || !strings.Contains(err.Error(), "nest too deep") {
		t.Fatalf("err %v", err)
	}
}
