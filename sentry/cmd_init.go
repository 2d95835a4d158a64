package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/spf13/cobra"
)

var clusterNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func newInitCommand() *cobra.Command {
	var name string
	var ttl time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init --cluster NAME",
		Short: "Make this disk set the primary of a new cluster and print a join token",
		Long: `Make this disk set the primary of a new cluster: a cluster CA, this node's
certificate, the disk stamp (role primary, generation 1, home hardware = this
machine) and a one-time join token for the secondary. The local agent must be
running; it does the work and starts its peer API.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !clusterNameRe.MatchString(name) {
				return usageError{fmt.Errorf("--cluster %q: use lower-case letters, digits and '-'", name)}
			}
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.Init(cmd.Context(), name, ttl)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "cluster %q created (%s)\nthis node: %s, primary, generation 1, hardware %s\nCA fingerprint: %s\n\n",
				res.ClusterName, res.ClusterID, res.Node, res.Hardware, res.CAFingerprint)
			fmt.Fprintf(w, "On the secondary, within %s, run:\n\n  sentry join %s %s\n\n(use this node's address; the token works once)\n",
				time.Until(res.TokenExpires).Round(time.Minute), res.Token, "PRIMARY_ADDRESS:PORT")
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "cluster", "", "cluster name (lower-case letters, digits, '-')")
	cmd.Flags().DurationVar(&ttl, "token-ttl", agent.DefaultTokenTTL, "how long the join token is valid")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (the token included)")
	cmd.MarkFlagRequired("cluster")
	return exitCodes{invalid: configInvalid, root: agentRoot}.set(cmd)
}

func newTokenCommand() *cobra.Command {
	var ttl time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make another one-time join token (on the primary)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.Token(cmd.Context(), ttl)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n(valid until %s, once)\n", res.Token, res.Expires.Local().Format(time.RFC1123))
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", agent.DefaultTokenTTL, "how long the token is valid")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{invalid: configInvalid, root: agentRoot}.set(cmd)
}

func newJoinCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "join TOKEN PRIMARY_ADDRESS:PORT",
		Short: "Pair this disk set, as the secondary, with the primary",
		Long: `Pair this disk set with the primary: the local agent connects to the primary
over TLS, trusting it only if its certificate leads to the CA named in the
token, sends a certificate request with the token's secret, and stores the
certificate it gets back and the disk stamp (role secondary).

TOKEN '-' reads the token from standard input (its first line): a token on
the command line can be read by any local account while the command runs,
and stays in the shell's history. The token is single-use and expires (1 h
by default), so the window is short either way.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := args[0]
			if token == "-" {
				line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
				if token = strings.TrimSpace(line); token == "" {
					return usageError{fmt.Errorf("join -: no token on standard input (%v)", err)}
				}
			}
			c, err := agentClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.Join(cmd.Context(), token, args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "joined cluster %q (%s) as the secondary of %s\nthis node: %s, hardware %s\n",
				res.ClusterName, res.ClusterID, res.Primary, res.Node, res.Hardware)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return exitCodes{fail: "the primary refused the token, or the command failed", invalid: configInvalid, root: agentRoot}.set(cmd)
}
