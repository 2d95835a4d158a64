package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/sentryha/sentry/lab"
)

// TestPairing runs the real agent under systemd in both nodes: init on P,
// join on S, and `sentry status --json` on either shows both nodes with
// their roles and identities.
func TestPairing(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })

	for _, set := range []string{"P", "S"} {
		out := sentry(t, "lab", "exec", set, "--", "systemctl", "show", "-p", "Type,NotifyAccess,WatchdogUSec,ActiveState,SubState,NoNewPrivileges,PrivateTmp", "sentry-agent")
		for _, want := range []string{"Type=notify", "NotifyAccess=main", "WatchdogUSec=30s", "ActiveState=active", "SubState=running", "NoNewPrivileges=yes", "PrivateTmp=yes"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: sentry-agent unit lacks %s:\n%s", set, want, out)
			}
		}
	}
	// The unit is valid as systemd reads it, and its exposure is measured.
	// (The lab installs no man pages, so its Documentation= line is left out.)
	if out, err := sentryErr("lab", "exec", "P", "--", "sh", "-c", "systemd-analyze verify sentry-agent.service 2>&1 | grep -v \"Command 'man \" || true"); err != nil || strings.Contains(out, "sentry-agent.service:") {
		t.Errorf("systemd-analyze verify sentry-agent.service: %v\n%s", err, out)
	}
	if out, err := sentryErr("lab", "exec", "P", "--", "sh", "-c", "systemd-analyze security --no-pager sentry-agent.service | tail -1"); err == nil {
		figure(t, "systemd-analyze security sentry-agent.service: %s", strings.TrimSpace(out))
	} else {
		t.Errorf("systemd-analyze security: %v", err)
	}

	var ir agent.InitResult
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "init", "--cluster", "office", "--json")), &ir); err != nil {
		t.Fatal(err)
	}
	primary := strings.Split(lab.Sets[0].Address, "/")[0]
	var jr agent.JoinResult
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", "S", "--", "sentry", "join", ir.Token, primary+":7443", "--json")), &jr); err != nil {
		t.Fatal(err)
	}
	if jr.ClusterID != ir.ClusterID || jr.Primary != "node-p" {
		t.Fatalf("join %+v after init %+v", jr, ir)
	}

	wantHW := map[string]string{"node-p": "mac:02:00:00:00:0a:01", "node-s": "mac:02:00:00:00:0b:01"}
	wantRole := map[string]string{"node-p": "primary", "node-s": "secondary"}
	checkStatus := func(set string) {
		t.Helper()
		var st agent.Status
		deadline := time.Now().Add(30 * time.Second)
		var problems []string
		for time.Now().Before(deadline) {
			problems = nil
			st = agent.Status{}
			if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", set, "--", "sentry", "status", "--json")), &st); err != nil {
				t.Fatal(err)
			}
			if !st.Initialized || st.ClusterID != ir.ClusterID || st.ClusterName != "office" || len(st.Nodes) != 2 {
				problems = append(problems, "cluster or node count")
			}
			for _, n := range st.Nodes {
				if n.Role != wantRole[n.Name] || n.Hardware != wantHW[n.Name] || n.Generation != 1 || !n.Reachable ||
					n.DiskSet == "" || n.AgentVersion != sentryVersion {
					problems = append(problems, n.Name)
				}
				if !n.Self && n.LastContact == nil {
					problems = append(problems, n.Name+" never contacted")
				}
			}
			if len(problems) == 0 {
				return
			}
			time.Sleep(time.Second)
		}
		t.Errorf("status on %s: %v\n%+v", set, problems, st)
	}
	checkStatus("P")
	checkStatus("S")

	// The verifier's runner, inside the nodes: systemd over D-Bus, and a
	// page fetched from the node itself.
	for _, set := range []string{"P", "S"} {
		out := sentry(t, "lab", "exec", set, "--", "sentry", "verify", "--kind", "systemd", "--param", "unit=nginx.service")
		if !strings.Contains(out, "systemd OK") || !strings.Contains(out, "state = active/running") {
			t.Errorf("%s: systemd probe:\n%s", set, out)
		}
		out = sentry(t, "lab", "exec", set, "--", "sentry", "verify", "--kind", "http", "--param", "url=http://127.0.0.1/", "--param", "marker=Welcome to nginx")
		if !strings.Contains(out, "http OK") {
			t.Errorf("%s: http probe:\n%s", set, out)
		}
	}
	sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "nginx")
	if out, err := sentryErr("lab", "exec", "S", "--", "sentry", "verify", "--kind", "systemd", "--param", "unit=nginx.service"); err == nil ||
		!strings.Contains(out, "FAILED: unit state: nginx.service is inactive") {
		t.Errorf("a stopped nginx passed the systemd probe: %v\n%s", err, out)
	}
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "nginx")

	// A client without a certificate, from the office: refused, and the
	// refusal is in P's journal with the office's address.
	l := lab.New(lab.Options{Name: labName})
	tr := &http.Transport{
		Dial: func(network, addr string) (net.Conn, error) {
			return lab.DialFrom(l.NS("office"), network, addr, dialTimeout)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post("https://"+primary+":7443/v1/hello", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no-certificate client from the office: %s", resp.Status)
	}
	journal := func(set string) string {
		return sentry(t, "lab", "exec", set, "--", "journalctl", "-u", "sentry-agent", "-o", "json", "--no-pager")
	}
	officeIP := strings.Split(lab.OfficeAddress, "/")[0]
	// journald may take a moment under load: the entry, not its speed, is
	// what is checked.
	refused := false
	for deadline := time.Now().Add(15 * time.Second); !refused && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		j := journal("P")
		refused = strings.Contains(j, `"SENTRY_PEER":"`+officeIP+`:`) && strings.Contains(j, "refused peer request")
	}
	if !refused {
		t.Errorf("P's journal has no structured refusal of %s:\n%s", officeIP,
			sentry(t, "lab", "exec", "P", "--", "sh", "-c", "journalctl -u sentry-agent -n 30 --no-pager"))
	}
	if j := journal("P"); !strings.Contains(j, `"MESSAGE":"node joined`) || !strings.Contains(j, `"SENTRY_NODE":"node-s"`) {
		t.Errorf("P's journal has no structured join entry")
	}

	// SIGHUP reloads; a restart keeps the cluster (files and store).
	sentry(t, "lab", "exec", "P", "--", "systemctl", "reload", "sentry-agent")
	sentry(t, "lab", "exec", "P", "--", "systemctl", "restart", "sentry-agent")
	if j := journal("P"); !strings.Contains(j, "configuration reloaded") || !strings.Contains(j, `"MESSAGE":"agent stopped"`) {
		t.Errorf("P's journal lacks the reload or the clean stop")
	}
	checkStatus("P")
	events := sentry(t, "lab", "exec", "P", "--", "sentry", "events")
	for _, want := range []string{"init", "join", "peer-reachable"} {
		if !strings.Contains(events, want) {
			t.Errorf("P's events lack %q:\n%s", want, events)
		}
	}
}

// TestAgentKill9DuringWrites kills the real agent (SIGKILL, under systemd)
// 20 times while the CLI makes it write to its store (each `sentry token` is
// two commits), and checks that the agent comes back each time and that
// nothing it reported as done before a kill is missing afterwards.
func TestAgentKill9DuringWrites(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")

	acked := 0
	for round := 0; round < 20; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := sentryErr("lab", "exec", "P", "--", "sentry", "token", "--ttl", "1m", "--json")
				if err == nil && strings.Contains(out, `"token": "sentry1-`) {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		}()
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		sentry(t, "lab", "exec", "P", "--", "systemctl", "kill", "-s", "SIGKILL", "sentry-agent")
		close(stop)
		wg.Wait()
		// systemd restarts it (Restart=on-failure); clear the start-rate
		// counter so 20 kills in a row are not taken for a crash loop.
		waitAgent(t, round)
		sentry(t, "lab", "exec", "P", "--", "systemctl", "reset-failed", "sentry-agent")
	}
	var evs []struct {
		Kind string `json:"kind"`
		Seq  uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "events", "-n", "100000", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	tokens := 0
	for i, e := range evs {
		if e.Kind == "token" {
			tokens++
		}
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Errorf("event seq %d after %d", e.Seq, evs[i-1].Seq)
		}
	}
	// init made one token too; a token whose answer was lost in the kill may
	// be stored without being counted, never the other way round.
	if tokens < acked+1 {
		t.Errorf("%d token events stored, but %d tokens were acknowledged (+1 from init)", tokens, acked)
	}
	if acked < 20 {
		t.Errorf("only %d tokens acknowledged in 20 rounds: the writes did not run", acked)
	}
	figure(t, "20 kills: %d tokens acknowledged, %d token events in the store", acked, tokens)
	// Still paired and talking.
	out := sentry(t, "lab", "exec", "P", "--", "sentry", "status", "--json")
	if !strings.Contains(out, `"name": "node-s"`) {
		t.Errorf("after the kills P's status lacks node-s:\n%s", out)
	}
}

func waitAgent(t *testing.T, round int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := sentryErr("lab", "exec", "P", "--", "sentry", "status"); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := sentryErr("lab", "exec", "P", "--", "journalctl", "-u", "sentry-agent", "-n", "30", "--no-pager")
	t.Fatalf("round %d: the agent did not come back after SIGKILL:\n%s", round, out)
}
