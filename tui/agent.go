package tui

import (
	"context"
	"iter"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/agent/swaps"
	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
)

// Agent is what the UI asks of the local agent: *agentclient.Client.
type Agent interface {
	Status(ctx context.Context) (*api.State, error)
	Ready(ctx context.Context) (*readiness.Result, error)
	Results(ctx context.Context, node, probe string, n int) ([]store.StoredResult, error)
	VerifyNow(ctx context.Context, service string, timeout time.Duration) (*schedule.Run, error)
	Events(ctx context.Context, n int) ([]store.Event, error)
	Subscribe(ctx context.Context, since uint64) iter.Seq2[store.Event, error]
	ConfigLog(ctx context.Context, rev string, n int) ([]cfgsync.LogEntry, error)
	ConfigDiff(ctx context.Context, rev string) (*cfgsync.DiffResult, error)
	Drift(ctx context.Context) ([]synchronizer.DriftItem, error)
	Rollback(ctx context.Context, rev string) (*cfgsync.RollbackResult, error)
	Parity(ctx context.Context) (*parity.Report, error)
	ParityApply(ctx context.Context, req parity.ApplyRequest) (*parity.ApplyResult, error)
	FailoverPlan(ctx context.Context, planned, force bool) (*failover.Plan, error)
	FailoverStatus(ctx context.Context) (*swaps.Status, error)
	FailoverHistory(ctx context.Context) ([]failover.Record, error)
	// The weekly reports (list, build, the peer's kept ones) and the
	// modules (list, use, rollback).
	Reports() agentclient.ReportsClient
	Modules() agentclient.ModulesClient
}
