package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/agent"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
)

// bootFixture points the bootcheck commands' folders (and hwid's) into dir
// for the test, and returns them with the cluster's machine profiles.
func bootFixture(t *testing.T, dir string) (bootcheck.Paths, string) {
	t.Helper()
	inv := "../synchronizer/inventory/testdata/nodes/"
	p := bootcheck.Paths{
		RunDir:        filepath.Join(dir, "run/sentry"),
		RunNetworkDir: filepath.Join(dir, "run/systemd/network"),
		NetworkDir:    filepath.Join(dir, "etc/systemd/network"),
		SysDir:        inv + "s/sys", ModulesDir: inv + "p/lib/modules", FirmwareDir: inv + "p/lib/firmware",
		DMIDir: filepath.Join(dir, "dmi"),
	}
	old := bootPaths
	t.Cleanup(func() { bootPaths = old })
	bootPaths = p
	t.Setenv(bootcheck.SysEnv, "")
	os.MkdirAll(p.NetworkDir, 0o755)
	return p, filepath.Join(dir, "etc/sentry/cluster/machines.toml")
}

func runSentry(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	return runSentryOn(t, strings.NewReader(stdin), args...)
}

// runSentryOn runs a command line with stdin (a terminal, say).
func runSentryOn(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestBootcheckExplainProbeError: a probe that could not be made shows as
// such in `sentry bootcheck explain`, with its warning.
func TestBootcheckExplainProbeError(t *testing.T) {
	paths, _ := bootFixture(t, t.TempDir())
	res := bootcheck.Result{ID: "x", Time: time.Now(), Outcome: bootcheck.Primary, Reason: "the primary disk set on its home machine",
		Probes: []bootcheck.Probe{
			{Name: "arp", Target: "192.0.2.10 on enp1s0", Detail: "could not be made: ARP probe on enp1s0: packet socket: operation not permitted",
				Error: "ARP probe on enp1s0: packet socket: operation not permitted"},
			{Name: "peer", Target: "node-s at 192.0.2.20:7443", Answered: true, Detail: "secondary, generation 1",
				Peer: &bootcheck.PeerClaim{Name: "node-s", Role: "secondary", Generation: 1}},
		},
		Warnings: []string{"the check of the primary's address 192.0.2.10 on enp1s0 could not be made (...)"}}
	b, _ := json.Marshal(res)
	os.MkdirAll(paths.RunDir, 0o755)
	os.WriteFile(filepath.Join(paths.RunDir, bootcheck.ResultName), b, 0o644)
	out, err := runSentry(t, "", "bootcheck", "explain")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"probe:      arp 192.0.2.10 on enp1s0: could not be made: ARP probe on enp1s0: packet socket: operation not permitted",
		"probe:      peer node-s at 192.0.2.20:7443: secondary, generation 1",
		"warning:    the check of the primary's address 192.0.2.10 on enp1s0 could not be made",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
}

func TestBootcheckRunBudgetFlag(t *testing.T) {
	_, err := runSentry(t, "", "bootcheck", "run", "--dry-run", "--budget", "0s", "--config", "/nonexistent/sentry.toml")
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--budget") {
		t.Fatalf("--budget 0s: %v", err)
	}
}

// TestBootcheckAdopt runs a real agent on fixture folders: a secondary disk
// set in safe mode on a machine the cluster does not know (its DMI UUID is
// a fixture). `sentry bootcheck adopt` answered "no" (or nothing) changes
// nothing; answered "yes" it records the machine on the disk set, and the
// decision is taken again. The system bus is out of reach (an address
// that does not exist), so starting the role fails, and says so.
func TestBootcheckAdopt(t *testing.T) {
	dir := t.TempDir()
	paths, machinesFile := bootFixture(t, dir)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(dir, "no-system-bus"))
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o700)
	os.MkdirAll(paths.DMIDir, 0o755)
	os.WriteFile(filepath.Join(paths.DMIDir, "product_uuid"), []byte("4C4C4544-0042-3510-8052-B4C04F4A4D32\n"), 0o444)
	const here = "dmi:uuid=4c4c4544-0042-3510-8052-b4c04f4a4d32"
	const home = "dmi:uuid=11111111-2222-3333-4444-555555555555"

	// The disk set: node-s's secondary, made on machine home.
	st := &stamp.Stamp{ClusterID: "c1", DiskSet: "d-s", Role: stamp.RoleSecondary, Generation: 1, HomeHardware: home}
	if err := stamp.WriteStamp(filepath.Join(state, stamp.StampFile), st); err != nil {
		t.Fatal(err)
	}
	if err := stamp.WriteCluster(filepath.Join(state, stamp.ClusterFile), &stamp.Cluster{ClusterID: "c1", NodeName: "node-s",
		PeerName: "node-p", PeerAddress: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("c1", "office", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey()
	cert, err := ca.SignKey(key, "node-s", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Save(filepath.Join(state, "pki"), ca.Cert, nil, cert, key); err != nil {
		t.Fatal(err)
	}
	if err := bootcheck.WriteMachines(machinesFile, &bootcheck.Machines{Machine: []bootcheck.Machine{
		{ID: home, Source: hwid.SourceDMIProductUUID, HomeOf: "node-s"}}}); err != nil {
		t.Fatal(err)
	}
	hw := hwid.Options{Mode: hwid.ModeDMI, NICKinds: []string{"device", "veth", "bridge", "dummy", "ifb"}}
	boot, err := bootcheck.Run(context.Background(), bootcheck.Options{StateDir: state, MachinesFile: machinesFile, Paths: paths, HW: hw, NoNetwork: true})
	if err != nil || boot.Outcome != bootcheck.SafeMode || !boot.UnknownMachine || boot.Hardware != here {
		t.Fatalf("fixture boot: %+v %v", boot, err)
	}

	// The agent, on these folders.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	socket := filepath.Join(dir, "run/agent.sock")
	cfg := filepath.Join(dir, "sentry.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[node]
name = "node-s"
state_dir = %q
[agent]
listen = %q
socket = %q
shutdown_timeout = "2s"
[peer]
interval = "1h"
timeout = "1s"
[verifier]
interval = "1h"
[hardware]
identity = "dmi"
nic_kinds = ["device", "veth", "bridge", "dummy", "ifb"]
`, state, listen, socket)), 0o644)
	a, err := agent.New(cfg, "test", agent.WithClusterDir(filepath.Dir(machinesFile)), agent.WithBootPaths(paths))
	if err != nil {
		t.Fatal(err)
	}
	a.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := agentclient.New(socket)
	for i := 0; ; i++ {
		st, err := c.Status(context.Background())
		if err == nil && st.SafeMode != "" {
			break
		}
		if i == 200 {
			t.Fatalf("agent not up in safe mode: %+v %v", st, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	adopted := filepath.Join(state, bootcheck.AdoptedName)
	adoptEvents := func() int {
		evs, err := c.Events(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Kind == "adopt" {
				n++
			}
		}
		return n
	}

	// Not confirmed on a terminal, or not asked (no terminal, no --yes):
	// nothing changes.
	for _, answer := range []string{"no\n", "\n", "(no terminal)"} {
		var out string
		var err error
		if answer == "(no terminal)" {
			out, err = runSentry(t, "yes\n", "bootcheck", "adopt", "--config", cfg)
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "no terminal") {
				t.Fatalf("without a terminal: %v\n%s", err, out)
			}
		} else {
			out, err = runSentryOn(t, openTerminal(t, answer), "bootcheck", "adopt", "--config", cfg)
			if err == nil || err.Error() != "not adopted: the answer was not 'yes'" {
				t.Fatalf("answer %q: %v\n%s", answer, err, out)
			}
			if !strings.Contains(out, "Adopt machine "+here+" in place of "+home+"? Type 'yes'") {
				t.Errorf("the question does not name both machines:\n%s", out)
			}
		}
		if _, err := os.Stat(adopted); err == nil {
			t.Fatalf("answer %q: %s written", answer, adopted)
		}
		if last, err := paths.Last(); err != nil || last.ID != boot.ID {
			t.Fatalf("answer %q: the boot decision changed: %+v %v", answer, last, err)
		}
		if n := adoptEvents(); n != 0 {
			t.Fatalf("answer %q: %d adopt events", answer, n)
		}
	}

	// Confirmed: the machine is recorded and the decision taken again.
	out, err := runSentryOn(t, openTerminal(t, "yes\n"), "bootcheck", "adopt", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "starting the role") || !strings.Contains(err.Error(), "system bus") {
		t.Fatalf("adopt: want the role start to fail on the missing system bus, got %v\n%s", err, out)
	}
	m, err := bootcheck.ReadMachines(adopted)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Machine) != 1 || m.Machine[0].ID != here || m.Machine[0].Replaces != home || m.Machine[0].HomeOf != "node-s" || m.Machine[0].Adopted.IsZero() {
		t.Fatalf("adopted machines: %+v", m.Machine)
	}
	last, err := paths.Last()
	if err != nil || last.ID == boot.ID || last.Outcome != bootcheck.Secondary || !last.Home {
		t.Fatalf("decision after adopt: %+v %v", last, err)
	}
	if n := adoptEvents(); n != 1 {
		t.Errorf("%d adopt events, want 1", n)
	}
}
