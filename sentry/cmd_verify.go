package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/modules"

	"github.com/sentryha/sentry/verifier"
	"github.com/spf13/cobra"
)

func newVerifyCommand() *cobra.Command {
	var kind string
	var params []string
	var timeout time.Duration
	var asJSON, showLog, last bool
	var service, node, debugProbe string
	cmd := &cobra.Command{
		Use:   "verify [--service NAME | --node NODE [--last] [--service NAME] | --debug PROBE | --kind KIND [--param KEY=VALUE]... [--log]]",
		Short: "Exercise this node's services now, show a node's scheduled results, or run one probe by hand",
		Long: `Without flags, the agent runs this node's probe set now, as its schedule
does (its deadline, its modules' probes, the canary password), stores the
results like a scheduled round's and the table prints them. --timeout gives
the set a deadline of its own: an ad hoc run, shown and marked so, never
stored or counted as the schedule's results.
--node NODE runs NODE's probes now through the agents (this node, or its peer
over the peer link) and prints the table; with --last it shows NODE's newest
scheduled results instead, from this agent's store (the agents send each other
their results).
--debug PROBE shows the last scheduled run of one probe, its phases and its own log.
--kind runs one probe of a compiled-in kind now, with its parameters, and prints
each phase with its timing (--log adds the probe's own log): an ad hoc run,
marked so, never stored.

Kinds: ` + strings.Join(verifier.KindNames(), ", ") + `.

Without --kind it runs this node's probe set: the web canary page, the
mail round trip, PostgreSQL, MariaDB, the SMB share and SFTP with the canary
account (made by 'sentry verifier setup'), the service units, disk space and
RAID. The agent runs the same set on its schedule ([verifier] interval).

The modes --node, --debug and --kind exclude each other; --last goes with
--node only, --param and --log with --kind only, --service not with --debug
or --kind.`,
		Args: noArgs,
		// The flags of the modes are checked before cobra's check of
		// the mutually exclusive ones, for a clearer message.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := verifyFlagsAgree(cmd); err != nil {
				return err
			}
			return checkFlags(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if node != "" {
				return runVerifyNode(cmd, node, service, asJSON, last)
			}
			if debugProbe != "" {
				return runVerifyDebug(cmd, debugProbe, asJSON)
			}
			if kind == "" {
				if !cmd.Flags().Changed("timeout") {
					timeout = 0 // the schedule's
				}
				return runVerifyAll(cmd, service, timeout, asJSON)
			}
			if !verifier.Known(kind) {
				return usageError{fmt.Errorf("--kind %q: known kinds are %s", kind, strings.Join(verifier.KindNames(), ", "))}
			}
			p, err := verifier.ParseFlagParams(kind, params)
			if err != nil {
				return usageError{err}
			}
			var logBuf bytes.Buffer
			lvl := slog.LevelInfo
			if showLog {
				lvl = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: lvl}))
			r := verifier.Run(cmd.Context(), verifier.Spec{Name: kind, Kind: kind, Params: p, Timeout: timeout}, log)
			w := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(w, adHocResult{r, true}); err != nil {
					return err
				}
			} else {
				state := "OK"
				if !r.OK {
					state = "FAILED: " + r.Message
				}
				fmt.Fprintf(w, "%s %s in %s\n", r.Kind, state, r.Duration.Round(time.Millisecond))
				for _, ph := range r.Phases {
					mark := "ok"
					if ph.Error != "" {
						mark = ph.Error
					}
					fmt.Fprintf(w, "  %-20s %8s  %s\n", ph.Name, ph.Duration.Round(100*time.Microsecond), mark)
				}
				printValues(w, r.Values)
				if showLog {
					fmt.Fprintf(w, "\nprobe log:\n%s", logBuf.String())
				}
				fmt.Fprintln(w, adHocNote)
			}
			if !r.OK {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "probe kind")
	cmd.Flags().StringArrayVar(&params, "param", nil, "probe parameter KEY=VALUE (repeatable)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "the probe's hard deadline (without --kind: the schedule's [verifier] timeout; given, the run is ad hoc)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&showLog, "log", false, "with --kind: show the probe's own log")
	cmd.Flags().StringVar(&debugProbe, "debug", "", "show the last scheduled run of this probe with its own log")
	cmd.Flags().StringVar(&node, "node", "", "run this node's probes now (this node or its peer, through the agents)")
	cmd.Flags().BoolVar(&last, "last", false, "with --node: show the newest scheduled results instead of running now")
	cmd.Flags().StringVar(&service, "service", "", "without --kind: run only the probes whose name starts with this")
	cmd.MarkFlagsMutuallyExclusive("node", "debug", "kind")
	return exitCodes{fail: "a probe failed (run now; a view of stored results exits 0 when they are red), or the command failed",
		invalid: configInvalid + " (not with --kind)", root: agentRoot + " (not with --kind; with --node and --last, group sentry may read)"}.set(cmd)
}

// verifyFlagsAgree refuses the flags that belong to a mode not chosen
// (the modes themselves are mutually exclusive flags).
func verifyFlagsAgree(cmd *cobra.Command) error {
	set := func(name string) bool { return cmd.Flags().Changed(name) }
	var modes []string
	for _, m := range []string{"node", "debug", "kind"} {
		if set(m) {
			modes = append(modes, "--"+m)
		}
	}
	if len(modes) > 1 {
		return usageError{fmt.Errorf("%s given: choose one of --node, --debug and --kind", strings.Join(modes, " and "))}
	}
	for _, x := range []struct {
		flag string
		ok   bool
		why  string
	}{
		{"last", set("node"), "--last goes with --node only"},
		{"param", set("kind"), "--param goes with --kind only"},
		{"log", set("kind"), "--log goes with --kind only"},
		{"service", !set("kind") && !set("debug"), "--service does not go with --kind or --debug"},
	} {
		if set(x.flag) && !x.ok {
			return usageError{errors.New(x.why)}
		}
	}
	return nil
}

// canaryPassword derives the canary account's password from the cluster
// key: the same on both nodes, never stored, never sent.
func canaryPassword(cmd *cobra.Command) (string, error) {
	cfg, err := cliConfig(cmd)
	if err != nil {
		return "", err
	}
	return schedule.ReadCanaryPassword(cfg.Node.StateDir)
}

// adHocNote marks the output of a run by hand with parameters of its own.
const adHocNote = "(ad hoc: run by hand with its own parameters; not stored, not a scheduled result)"

// adHocResult is a result of a run by hand with parameters of its own, as
// --json prints it: the result's fields and "ad_hoc": true.
type adHocResult struct {
	verifier.Result
	AdHoc bool `json:"ad_hoc"`
}

// runVerifyAll asks the agent to run this node's probe set now (those
// whose name starts with service), with the schedule's settings, or with
// timeout (not 0) as an ad hoc run, and prints the table; it exits 1 when
// a probe failed.
func runVerifyAll(cmd *cobra.Command, service string, timeout time.Duration, asJSON bool) error {
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	run, err := c.VerifyNow(cmd.Context(), service, timeout)
	if err != nil {
		return err
	}
	results := run.Results
	if results == nil {
		results = []verifier.Result{}
	}
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	w := cmd.OutOrStdout()
	if asJSON {
		var v any = results
		if run.AdHoc {
			marked := make([]adHocResult, 0, len(results))
			for _, r := range results {
				marked = append(marked, adHocResult{r, true})
			}
			v = marked
		}
		if err := printJSON(w, v); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROBE\tKIND\tRESULT\tTIME\tDETAIL")
		for _, r := range results {
			state, detail := "ok", valuesDetail(r.Values)
			if !r.OK {
				state, detail = "FAILED", r.Message
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, state, r.Duration.Round(time.Millisecond), detail)
		}
		tw.Flush()
		if run.AdHoc {
			fmt.Fprintln(w, adHocNote)
		}
	}
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

func newVerifierCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verifier",
		Short: "Set up the verifier's canaries on this node",
	}
	var asJSON bool
	setup := &cobra.Command{
		Use:   "setup",
		Short: "Make (or repair) this node's canary account, databases, share and page",
		Long: `Make (or repair) this node's canaries, idempotently: the system account
sentry-canary (its mailbox; SFTP only over SSH; an SMB password), the canary
share /srv/sentry-canary, the PostgreSQL and MariaDB canary users with a
table each, and the canary pages the selected modules name (web-nginx's:
/var/www/html/sentry-canary.html). The password is derived from the cluster
key, so it is the same on both nodes and stored nowhere. Run it on the
primary after pairing (and after selecting a module version whose canaries
differ): the secondary's agent follows.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := canaryPassword(cmd)
			if err != nil {
				return err
			}
			var pages []verifier.Page
			if set, _, err := modules.Load(modules.DefaultOptions()); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "sentry: modules refused, the compiled-in canary page is made: %v\n", err)
			} else {
				pages = set.CanaryPages()
			}
			steps := verifier.Setup(cmd.Context(), pw, pages...)
			bad := 0
			for _, s := range steps {
				if s.Error != "" {
					bad++
				}
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), steps); err != nil {
					return err
				}
			} else {
				for _, s := range steps {
					state := "ok"
					if s.Error != "" {
						state = "FAILED: " + s.Error
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%-10s %s\n", s.Service, state)
				}
			}
			if bad > 0 {
				return exitError{1}
			}
			// Declare them: on the primary the declaration syncs to the
			// secondary, whose agent makes the same canaries there.
			cfg, err := cliConfig(cmd)
			if err != nil {
				return err
			}
			st, _ := stamp.ReadStamp(filepath.Join(cfg.Node.StateDir, stamp.StampFile))
			primary := st != nil && st.Role == stamp.RolePrimary
			if err := schedule.DeclareCanaries(cfg.Node.StateDir, primary); err != nil {
				return err
			}
			if primary && !asJSON {
				fmt.Fprintf(cmd.OutOrStdout(), "declared in %s: the secondary makes the same canaries\n", schedule.CanaryFile)
			}
			return nil
		},
	}
	setup.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	exitCodes{fail: "a canary could not be made, or the command failed", invalid: configInvalid}.set(setup)
	cmd.AddCommand(setup)
	return cmd
}

// runVerifyNode runs node's probes now through the agents (or with last
// prints the newest stored result of each) and prints the table; it exits
// 1 when a probe failed.
func runVerifyNode(cmd *cobra.Command, node, service string, asJSON, last bool) error {
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	var res []store.StoredResult
	if last {
		res, err = c.Results(cmd.Context(), node, "", 0)
	} else {
		res, err = c.VerifyNode(cmd.Context(), node, service)
	}
	if err != nil {
		return err
	}
	var keep []store.StoredResult
	for _, r := range res {
		if service == "" || strings.HasPrefix(r.Probe, service) {
			keep = append(keep, r)
		}
	}
	if keep == nil {
		keep = []store.StoredResult{}
	}
	w := cmd.OutOrStdout()
	if asJSON {
		if err := printJSON(w, keep); err != nil {
			return err
		}
		return failedExit(keep, last)
	}
	if len(keep) == 0 {
		return fmt.Errorf("no scheduled results of node %q stored here (is it this node or its peer, paired and set up?)", node)
	}
	if err := printStoredResults(w, keep, time.Now()); err != nil {
		return err
	}
	return failedExit(keep, last)
}

// printStoredResults prints stored results as the --node table: a failed
// probe's detail is where and why it failed, a passing one's what it
// measured.
func printStoredResults(w io.Writer, rs []store.StoredResult, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROBE\tKIND\tRESULT\tAGE\tTIME\tPHASES\tDETAIL")
	for _, r := range rs {
		state, detail := "ok", valuesDetail(r.Values)
		if !r.OK {
			state, detail = "FAILED", r.Message
			if r.FailedPhase != "" {
				detail = "phase " + r.FailedPhase + ": " + r.Message
			}
		}
		var phases []string
		for _, p := range r.Phases {
			phases = append(phases, fmt.Sprintf("%s %dms", p.Name, p.MS))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dms\t%s\t%s\n", r.Probe, r.Kind, state, now.Sub(r.Start).Round(time.Second), r.DurationMS, strings.Join(phases, ", "), detail)
	}
	return tw.Flush()
}

// valueWords say the values the probe kinds measure in words; another
// value shows as key=value.
var valueWords = map[string]string{
	"latency_ms":    "submit to visible %s ms",
	"tls_days_left": "certificate valid %s more days",
	"free_percent":  "%s%% free",
	"age":           "newest file %s old",
	"snapshot":      "snapshot %s",
	"snapshot_age":  "newest snapshot %s old",
	"arrays":        "%s md array(s)",
	"state":         "%s",
}

// valuesDetail is a result's measured values in one line, by key.
func valuesDetail(vals map[string]string) string {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if f, ok := valueWords[k]; ok {
			out = append(out, fmt.Sprintf(f, vals[k]))
		} else {
			out = append(out, k+"="+vals[k])
		}
	}
	return strings.Join(out, ", ")
}

// printValues prints a result's measured values, one a line, by key.
func printValues(w io.Writer, vals map[string]string) {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, vals[k])
	}
}

// failedExit is exit status 1 when a probe run now failed (a view of
// stored results always exits 0).
func failedExit(rs []store.StoredResult, last bool) error {
	if last {
		return nil
	}
	for _, r := range rs {
		if !r.OK {
			return exitError{1}
		}
	}
	return nil
}

// runVerifyDebug prints the last scheduled run of one probe with its log.
func runVerifyDebug(cmd *cobra.Command, probe string, asJSON bool) error {
	c, err := agentClient(cmd)
	if err != nil {
		return err
	}
	d, err := c.Debug(cmd.Context(), probe)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return printJSON(w, d)
	}
	printDebug(w, d)
	return nil
}

// printDebug prints one probe's last scheduled run: its phases, what it
// measured and its own log.
func printDebug(w io.Writer, d *schedule.ProbeDebug) {
	r := d.Result
	state := "OK"
	if !r.OK {
		state = "FAILED: " + r.Message
	}
	fmt.Fprintf(w, "%s (%s) %s in %s, at %s\n", r.Name, r.Kind, state, r.Duration.Round(time.Millisecond), r.Started.Local().Format(time.RFC3339))
	for _, ph := range r.Phases {
		mark := "ok"
		if ph.Error != "" {
			mark = ph.Error
		}
		fmt.Fprintf(w, "  %-20s %8s  %s\n", ph.Name, ph.Duration.Round(100*time.Microsecond), mark)
	}
	printValues(w, r.Values)
	fmt.Fprintf(w, "\nprobe log:\n%s", d.Log)
}
