package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sentryha/sentry/verifier"
	"github.com/spf13/cobra"
)

func newVerifyCommand() *cobra.Command {
	var kind string
	var params []string
	var timeout time.Duration
	var asJSON, debug bool
	cmd := &cobra.Command{
		Use:   "verify --kind KIND [--param KEY=VALUE]...",
		Short: "Run one probe on this node now and print its phases",
		Long: `Run one probe of a compiled-in kind on this node now, with its parameters,
and print each phase with its timing. --debug adds the probe's own log.

Kinds: ` + strings.Join(verifier.KindNames(), ", ") + `.

This is the verifier's runner by hand. The scheduled verification of every
service on both nodes, with canary accounts, comes with issue 6.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := verifier.Params{}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--param %q: want KEY=VALUE", kv)}
				}
				p[k] = v
			}
			if _, ok := verifier.Kinds[kind]; !ok {
				return usageError{fmt.Errorf("--kind %q: known kinds are %s", kind, strings.Join(verifier.KindNames(), ", "))}
			}
			var logBuf bytes.Buffer
			lvl := slog.LevelInfo
			if debug {
				lvl = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: lvl}))
			r := verifier.Run(cmd.Context(), verifier.Spec{Name: kind, Kind: kind, Params: p, Timeout: timeout}, log)
			w := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(w, r); err != nil {
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
				for k, v := range r.Values {
					fmt.Fprintf(w, "  %s = %s\n", k, v)
				}
				if debug {
					fmt.Fprintf(w, "\nprobe log:\n%s", logBuf.String())
				}
			}
			if !r.OK {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "probe kind")
	cmd.Flags().StringArrayVar(&params, "param", nil, "probe parameter KEY=VALUE (repeatable)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "the probe's hard deadline")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&debug, "debug", false, "show the probe's own log")
	cmd.MarkFlagRequired("kind")
	return cmd
}
