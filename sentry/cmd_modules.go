package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sentryha/sentry/modules"
	"github.com/spf13/cobra"
)

func newModulesCommand() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "modules",
		Short: "List, install and select the versions of the service modules",
		Long: `Modules describe each service as a TOML manifest (docs/modules.md): its
packages, units and reload order, tracked configuration paths, per-node
paths, canaries and probes. Manifests are built in, written by the operator
in /etc/sentry/modules.d, or installed side by side as
/var/lib/sentry/modules/NAME/VERSION.toml. /etc/sentry/modules.toml selects
the version of each module; the secondary follows the primary's selection.

A bad manifest or selection file is reported with its file, line, column and
key, and the command exits 3. 'use' and 'rollback' change the version in
use (and the secondary follows): they ask for confirmation on a terminal;
--yes does not ask.`,
	}
	cmd.PersistentFlags().StringVar(&root, "root", "/", "operate on the system mounted at this folder")
	opts := func() modules.Options { return modules.OptionsAt(root) }

	var asJSON, yes bool
	jsonFlag := func(c *cobra.Command) *cobra.Command {
		c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
		return modulesExitCodes.set(c)
	}
	asks := func(c *cobra.Command) *cobra.Command {
		c.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
		e := modulesExitCodes
		e.confirm = true
		return e.set(c)
	}
	cmd.AddCommand(
		jsonFlag(&cobra.Command{
			Use:   "list",
			Short: "List every module, the version selected and the versions available",
			Args:  noArgs,
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesList(c.OutOrStdout(), c.ErrOrStderr(), opts(), asJSON)
			},
		}),
		jsonFlag(&cobra.Command{
			Use:   "show NAME[@VERSION]",
			Short: "Print a module's manifest (the selected version unless one is named)",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesShow(c.OutOrStdout(), c.ErrOrStderr(), opts(), args[0], asJSON)
			},
		}),
		jsonFlag(&cobra.Command{
			Use:   "install FILE",
			Short: "Check a manifest and install it as a new version; select it unless the module is pinned",
			Long: `Check a manifest (strictly, and its executables against dpkg's file lists)
and install it as /var/lib/sentry/modules/NAME/VERSION.toml. Versions are
immutable: a version that exists with other content is refused. The new
version is selected when it is newer than the one in use, unless the module
is pinned or disabled. Nothing is written when the result would be refused.`,
			Args: exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesInstall(c.OutOrStdout(), c.ErrOrStderr(), opts(), args[0], asJSON)
			},
		}),
		asks(jsonFlag(&cobra.Command{
			Use:   "use NAME@VERSION",
			Short: "Select a version of a module",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesConfirmed(c, opts(), "use", args[0], yes, asJSON)
			},
		})),
		asks(jsonFlag(&cobra.Command{
			Use:   "rollback NAME",
			Short: "Select the version used before, and pin it",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesConfirmed(c, opts(), "rollback", args[0], yes, asJSON)
			},
		})),
		jsonFlag(&cobra.Command{
			Use:   "pin NAME",
			Short: "Keep a module at the version in use: installs do not select newer ones",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesChange(c.OutOrStdout(), c.ErrOrStderr(), opts(), "pin", args[0], asJSON)
			},
		}),
		jsonFlag(&cobra.Command{
			Use:   "unpin NAME",
			Short: "Let the next install of a newer version select it",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesChange(c.OutOrStdout(), c.ErrOrStderr(), opts(), "unpin", args[0], asJSON)
			},
		}),
		jsonFlag(&cobra.Command{
			Use:   "disable NAME",
			Short: "Unselect a module (a built-in selected by default, say)",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesChange(c.OutOrStdout(), c.ErrOrStderr(), opts(), "disable", args[0], asJSON)
			},
		}),
		jsonFlag(&cobra.Command{
			Use:   "enable NAME",
			Short: "Select a module again, or a built-in that is not selected by default",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesChange(c.OutOrStdout(), c.ErrOrStderr(), opts(), "enable", args[0], asJSON)
			},
		}),
		newModulesApproveCommand(),
		jsonFlag(&cobra.Command{
			Use:   "remove NAME@VERSION",
			Short: "Delete an installed version (never the selected one)",
			Args:  exactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return runModulesRemove(c.OutOrStdout(), c.ErrOrStderr(), opts(), args[0], asJSON)
			},
		}),
	)
	return modulesExitCodes.set(cmd)
}

// modulesExitCodes are the modules commands' exit codes.
var modulesExitCodes = exitCodes{fail: "refused: no such module or version, removing the selected one, no version to roll back to",
	invalid: "a manifest or the selection file (/etc/sentry/modules.toml) is invalid"}

// runModulesConfirmed runs use or rollback once the operator confirmed
// the change (or said --yes).
func runModulesConfirmed(cmd *cobra.Command, opts modules.Options, verb, ref string, yes, asJSON bool) error {
	name, version, err := parseRef(ref, verb == "use")
	if err == nil && verb == "rollback" && version != "" {
		err = usageError{fmt.Errorf("%s takes a module name without a version", verb)}
	}
	if err != nil {
		return err
	}
	if err := canConfirm(cmd, yes); err != nil {
		return err
	}
	what := fmt.Sprintf("Select %s %s", name, version)
	if verb == "rollback" {
		what = fmt.Sprintf("Go back to the version of %s used before, and pin it", name)
	}
	if list, _, err := modules.List(opts); err == nil {
		for _, st := range list {
			if st.Name != name || st.Selected == "" {
				continue
			}
			what += " (in use: " + st.Selected
			if verb == "rollback" && len(st.History) > 0 {
				what += ", before it: " + st.History[len(st.History)-1]
			}
			what += ")"
		}
	}
	if err := confirm(cmd, yes, what+"? The secondary follows.", "nothing changed"); err != nil {
		return err
	}
	if verb == "use" {
		return runModulesUse(cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, ref, asJSON)
	}
	return runModulesChange(cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, verb, name, asJSON)
}

func printWarnings(w io.Writer, warns []modules.Warning) {
	for _, x := range warns {
		fmt.Fprintln(w, "warning:", x.String())
	}
}

// parseRef reads NAME@VERSION (needVersion) or NAME[@VERSION]; a bad one is
// a usage error.
func parseRef(ref string, needVersion bool) (string, string, error) {
	name, version, err := modules.ParseRef(ref)
	if err == nil && needVersion && version == "" {
		err = fmt.Errorf("%q names no version: write NAME@VERSION", ref)
	}
	if err != nil {
		return "", "", usageError{err}
	}
	return name, version, nil
}

func runModulesList(w, errw io.Writer, opts modules.Options, asJSON bool) error {
	list, warns, err := modules.List(opts)
	printWarnings(errw, warns)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, list)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tKIND\tSELECTED\tORIGIN\tSTATE\tAVAILABLE")
	for _, s := range list {
		sel, origin := s.Selected, s.Origin
		if sel == "" {
			sel, origin = "-", "-"
		}
		var av []string
		for _, a := range s.Available {
			av = append(av, a.Version+" ("+a.Origin+")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, sel, origin, stateWord(s), strings.Join(av, ", "))
	}
	return tw.Flush()
}

func stateWord(s modules.Status) string {
	var w []string
	if s.Pinned {
		w = append(w, "pinned")
	}
	if s.Disabled {
		w = append(w, "disabled")
	}
	if len(w) == 0 {
		return "-"
	}
	return strings.Join(w, ",")
}

// statusLine is one module's state in a sentence.
func statusLine(s modules.Status) string {
	var b strings.Builder
	b.WriteString(s.Name + ": ")
	if s.Selected == "" {
		b.WriteString("not selected")
	} else {
		fmt.Fprintf(&b, "%s (%s, %s)", s.Selected, s.Origin, s.Source)
	}
	if s.Pinned {
		b.WriteString(", pinned")
	}
	if s.Disabled {
		b.WriteString(", disabled")
	}
	if len(s.History) > 0 {
		b.WriteString("; before: " + strings.Join(s.History, ", "))
	}
	return b.String()
}

func runModulesShow(w, errw io.Writer, opts modules.Options, ref string, asJSON bool) error {
	if _, _, err := parseRef(ref, false); err != nil {
		return err
	}
	m, st, warns, err := modules.Show(opts, ref)
	printWarnings(errw, warns)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, struct {
			Status   modules.Status    `json:"status"`
			Manifest *modules.Manifest `json:"manifest"`
		}{st, m})
	}
	fmt.Fprintf(w, "# %s %s (%s, %s)\n# %s\n", m.Name, m.Version, m.Origin, m.Source, statusLine(st))
	_, err = w.Write(m.Raw())
	return err
}

func runModulesInstall(w, errw io.Writer, opts modules.Options, file string, asJSON bool) error {
	res, warns, err := modules.Install(opts, file)
	printWarnings(errw, warns)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, res)
	}
	verb := "installed"
	if res.Already {
		verb = "already there"
	}
	fmt.Fprintf(w, "%s@%s: %s (%s)\n", res.Name, res.Version, verb, res.Path)
	if !res.Selected {
		fmt.Fprintf(w, "not selected: %s (select it with sentry modules use %s@%s)\n", res.NotSelected, res.Name, res.Version)
	}
	fmt.Fprintln(w, statusLine(res.Status))
	return nil
}

func runModulesUse(w, errw io.Writer, opts modules.Options, ref string, asJSON bool) error {
	name, version, err := parseRef(ref, true)
	if err != nil {
		return err
	}
	st, warns, err := modules.Use(opts, name, version)
	return printStatus(w, errw, st, warns, err, asJSON)
}

// runModulesChange runs rollback, pin, unpin, enable or disable.
func runModulesChange(w, errw io.Writer, opts modules.Options, verb, name string, asJSON bool) error {
	if _, v, err := parseRef(name, false); err != nil || v != "" {
		if err == nil {
			err = usageError{fmt.Errorf("%s takes a module name without a version", verb)}
		}
		return err
	}
	f := map[string]func(modules.Options, string) (modules.Status, []modules.Warning, error){
		"rollback": modules.Rollback, "pin": modules.Pin, "unpin": modules.Unpin,
		"enable": modules.Enable, "disable": modules.Disable,
	}[verb]
	if f == nil {
		return fmt.Errorf("modules: no action %q", verb)
	}
	st, warns, err := f(opts, name)
	return printStatus(w, errw, st, warns, err, asJSON)
}

func printStatus(w, errw io.Writer, st modules.Status, warns []modules.Warning, err error, asJSON bool) error {
	printWarnings(errw, warns)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, st)
	}
	_, err = fmt.Fprintln(w, statusLine(st))
	return err
}

func runModulesRemove(w, errw io.Writer, opts modules.Options, ref string, asJSON bool) error {
	name, version, err := parseRef(ref, true)
	if err != nil {
		return err
	}
	warns, err := modules.Remove(opts, name, version)
	printWarnings(errw, warns)
	if err != nil {
		return err
	}
	out := struct {
		Removed string          `json:"removed"`
		Status  *modules.Status `json:"status,omitempty"`
	}{Removed: name + "@" + version}
	if list, _, err := modules.List(opts); err == nil {
		for i := range list {
			if list[i].Name == name {
				out.Status = &list[i]
			}
		}
	}
	if asJSON {
		return printJSON(w, out)
	}
	fmt.Fprintf(w, "removed %s\n", out.Removed)
	if out.Status != nil {
		fmt.Fprintln(w, statusLine(*out.Status))
	}
	return nil
}
