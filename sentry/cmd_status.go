package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/spf13/cobra"
)

// cliConfig reads --config; a missing file means the defaults.
func cliConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		d := config.Default()
		return &d, nil
	}
	return cfg, err
}

// agentClient returns a client for the local agent named by --config: on
// agent.socket, or for a user the socket refuses, on agent.read_socket,
// which serves group sentry the requests that only read (a refusal there
// is the not-root error, naming this command with sudo).
func agentClient(cmd *cobra.Command) (*agentclient.Client, error) {
	cfg, err := cliConfig(cmd)
	if err != nil {
		return nil, err
	}
	return agentclient.New(cfg.Agent.Socket, agentclient.ReadSocket(cfg.Agent.ReadSocket), agentclient.Sudo(cmd.CommandPath())), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStatusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show both nodes: role, hardware, disk set, generation, agent version, last contact",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			return runStatus(cmd.Context(), c, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRead}.set(cmd)
}

func runStatus(ctx context.Context, c *agentclient.Client, w io.Writer, asJSON bool) error {
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, st)
	}
	if st.Initialized {
		fmt.Fprintf(w, "cluster %s (%s)\n\n", st.ClusterName, st.ClusterID)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tGEN\tDISK SET\tHARDWARE\tAGENT\tLAST CONTACT")
	for _, n := range st.Nodes {
		name := n.Name
		if n.Self {
			name += " (this node)"
		}
		contact := "-"
		switch {
		case n.Self:
			contact = "now"
		case n.LastContact != nil:
			contact = time.Since(*n.LastContact).Round(time.Second).String() + " ago"
			if !n.Reachable {
				contact += " (unreachable)"
			}
		}
		ds := n.DiskSet
		if len(ds) > 12 {
			ds = ds[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", name, dash(n.Role), n.Generation, dash(ds), dash(n.Hardware), dash(n.AgentVersion), contact)
	}
	tw.Flush()
	for _, n := range st.Nodes {
		if n.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", n.Name, n.Error)
		}
		if n.SafeMode != "" {
			fmt.Fprintf(w, "%s: SAFE MODE: %s (role services held; `sentry bootcheck explain` on %s)\n", n.Name, n.SafeMode, n.Name)
		} else if n.Failover {
			fmt.Fprintf(w, "%s: FAILOVER: the %s disk set runs on the other machine\n", n.Name, n.Role)
		}
	}
	for _, n := range st.Nodes {
		switch {
		case n.Role == "primary" && n.ConfigHead != "":
			fmt.Fprintf(w, "%s: configuration at %s\n", n.Name, short(n.ConfigHead))
		case n.Role == "secondary" && n.ConfigFailed != "":
			why := n.ConfigError
			if why == "" {
				why = "reason not reported"
			}
			fmt.Fprintf(w, "%s: configuration %s FAILED to apply (%s); running %s\n", n.Name, short(n.ConfigFailed), why, short(n.ConfigApplied))
			if n.ConfigRetry != "" {
				fmt.Fprintf(w, "%s: the cause may clear by itself: %s\n", n.Name, n.ConfigRetry)
			}
		case n.Role == "secondary" && n.ConfigApplied != "":
			fmt.Fprintf(w, "%s: configuration %s applied\n", n.Name, short(n.ConfigApplied))
		}
		if n.Verify != "" {
			fmt.Fprintf(w, "%s: verifier %s\n", n.Name, n.Verify)
		}
		for _, r := range n.VerifyRed {
			fmt.Fprintf(w, "%s: RED %s\n", n.Name, r)
		}
		if n.ConfigDrift > 0 {
			fmt.Fprintf(w, "%s: %d tracked path(s) edited locally (sentry config drift on %s)\n", n.Name, n.ConfigDrift, n.Name)
		}
	}
	if st.Hint != "" {
		fmt.Fprintf(w, "\n%s\n", st.Hint)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
