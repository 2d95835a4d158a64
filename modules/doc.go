// Package modules holds what Sentry knows about each service as versioned
// TOML manifests, several versions side by side.
//
// A module is a manifest, never code: its packages, its systemd units and
// their reload order, the configuration paths that cross from the primary
// to the secondary, the paths that stay per node, its canaries (data only)
// and its probes, by the verifier's compiled-in probe kinds
// (verifier.KindNames), their parameters decoded into the kind's type and
// checked when the manifest is read. A manifest may allow named programs under its tracked
// paths to cross, when each is a file of one of its packages (dpkg's lists).
//
// Manifests come from three places: built into the binary (builtin/*.toml),
// the operator's /etc/sentry/modules.d/*.toml, and installed versions,
// /var/lib/sentry/modules/NAME/VERSION.toml. The selection file,
// /etc/sentry/modules.toml, says which version of each module runs, whether
// it is pinned, and the versions selected before (for rollback). Load
// resolves them into a Set, which the agent turns into probes, units,
// tracked paths and node keys.
//
// Schemas: 2 is current; 1 is read in full; a newer schema is read with the
// keys this binary knows, and each other key is a Warning. docs/modules.md
// is the reference for every key.
package modules
