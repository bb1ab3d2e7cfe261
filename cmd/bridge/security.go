package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/keyfile"
)

// exposedConfig returns a warning when the configuration file at path (none: the
// embedded example) can be read by its group or by others: it may hold tokens (Matrix
// as_token and hs_token, Slack tokens, IRC passwords, a PostgreSQL DSN). It is a
// warning, not a refusal: the key files, which bridge run refuses when exposed, hold
// the secrets that cannot be replaced, and an operator may share a token-free
// configuration on purpose.
func exposedConfig(path string) string {
	if path == "" {
		return ""
	}
	exposed, mode, err := keyfile.Exposed(path)
	if err != nil || !exposed {
		return ""
	}
	return fmt.Sprintf("mode %v is readable by group or others, and the configuration may hold tokens and passwords; chmod 600 it", mode)
}

// warnExposedConfig logs exposedConfig's warning, if any, at WARN.
func warnExposedConfig(log *slog.Logger, path string) {
	if w := exposedConfig(path); w != "" {
		log.Warn("configuration file "+w, "path", path)
	}
}

// rejectCounter is a connector that counts the requests it refused for a missing or
// bad credential or signature (bridges/slack's Events API endpoint) instead of logging
// each: anyone who can reach a listener can send them.
type rejectCounter interface {
	Name() string
	RejectedRequests() uint64
}

// rateLimitCounter is a connector that refuses requests past its own rate limit
// (bridges/api: 429) and counts them.
type rateLimitCounter interface {
	Name() string
	RateLimitedRequests() uint64
}

// registerRejectCounters exports each such connector's count as
// statusgate_rejected_requests_total{network=…}, and each rateLimitCounter's as
// statusgate_rate_limited_requests_total{network=…}.
func registerRejectCounters(reg prometheus.Registerer, conns []bridges.Connector) error {
	for _, c := range conns {
		if lc, ok := c.(rateLimitCounter); ok {
			err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: "statusgate", Name: "rate_limited_requests_total",
				Help:        "Requests a connector refused past its own rate limit (the api: 429).",
				ConstLabels: prometheus.Labels{"network": lc.Name()},
			}, func() float64 { return float64(lc.RateLimitedRequests()) }))
			if err != nil {
				return fmt.Errorf("register rate_limited_requests_total of %s: %w", lc.Name(), err)
			}
		}
		rc, ok := c.(rejectCounter)
		if !ok {
			continue
		}
		err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "statusgate", Name: "rejected_requests_total",
			Help:        "Requests a connector's listener refused for a missing or bad credential or signature.",
			ConstLabels: prometheus.Labels{"network": rc.Name()},
		}, func() float64 { return float64(rc.RejectedRequests()) }))
		if err != nil {
			return fmt.Errorf("register rejected_requests_total of %s: %w", rc.Name(), err)
		}
	}
	return nil
}
