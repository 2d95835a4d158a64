package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sentryha/sentry/lab"
	"github.com/spf13/cobra"
)

func newPairCommand(f *labFlags) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "pair",
		Short: "Pair the lab's nodes: sentry init on P, sentry join on S",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.lab(cmd)
			if err != nil {
				return err
			}
			return runPair(cmd.Context(), l, cluster, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "office", "cluster name")
	return cmd
}

// initResult is what runPair reads of `sentry init --json`.
type initResult struct {
	ClusterID     string `json:"cluster_id"`
	CAFingerprint string `json:"ca_fingerprint"`
	Token         string `json:"token"`
}

// runPair runs the operator's two pairing commands inside the lab's nodes,
// through their own sentry binaries and agents; progress goes to log.
func runPair(ctx context.Context, l *lab.Lab, cluster string, log io.Writer) error {
	var out, errb strings.Builder
	code, err := l.Exec(ctx, "P", []string{"sentry", "init", "--cluster", cluster, "--json"}, nil, &out, &errb)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("sentry init on P: %s", strings.TrimSpace(errb.String()))
	}
	var ir initResult
	if err := json.Unmarshal([]byte(out.String()), &ir); err != nil {
		return fmt.Errorf("sentry init on P printed %q: %w", out.String(), err)
	}
	if len(ir.CAFingerprint) < 16 || ir.Token == "" {
		return fmt.Errorf("sentry init on P printed no CA fingerprint or no token: %q", out.String())
	}
	fmt.Fprintf(log, "lab: P: sentry init --cluster %s: cluster %s, CA %s...\n", cluster, ir.ClusterID, ir.CAFingerprint[:16])
	primary := strings.Split(lab.Sets[0].Address, "/")[0] + ":7443"
	errb.Reset()
	// The token through stdin: not on a command line the node's ps shows.
	code, err = l.Exec(ctx, "S", []string{"sentry", "join", "-", primary}, strings.NewReader(ir.Token+"\n"), log, &errb)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("sentry join on S: %s", strings.TrimSpace(errb.String()))
	}
	return nil
}
