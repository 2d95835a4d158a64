package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
	"github.com/sentryha/sentry/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file; show, diff and roll back the tracked configuration",
	}
	var asJSON bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration file and print the effective configuration",
		Long: `Validate the configuration file: strict decoding (an unknown key is an
error), then value checks. A bad file is reported with its file name, line,
column and key, and the command exits 3.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := cmd.Flags().GetString("config")
			return runConfigCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), path, asJSON)
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print the effective configuration as JSON")
	cmd.AddCommand(check)
	addConfigRepoCommands(cmd)
	return cmd
}

func runConfigCheck(stdout, stderr io.Writer, path string, asJSON bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.Context != "" {
			fmt.Fprintln(stderr, ce.Context)
		}
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	}
	fmt.Fprintf(stdout, "%s: ok\n\n# effective configuration (defaults filled in)\n", path)
	return toml.NewEncoder(stdout).Encode(cfg)
}
