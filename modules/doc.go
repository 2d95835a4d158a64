// Package modules holds what Sentry knows about each service as versioned TOML manifests, several side by side.
//
// Nothing is implemented here yet: this package is planned by issue(s) 8
// (see docs/design.md). Its folder exists so the layout of the repository is
// the one the design describes.
package modules
