package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/bridges"
)

// metrics are the gateway's Prometheus series. Label values are route chat names,
// network names, destination channel IDs and fixed reason words: all bounded by
// configuration, never by traffic.
type metrics struct {
	in       *prometheus.CounterVec   // route, network
	out      *prometheus.CounterVec   // route, network
	dropped  *prometheus.CounterVec   // reason
	retries  *prometheus.CounterVec   // network
	failures *prometheus.CounterVec   // network
	depth    *prometheus.GaugeVec     // dest
	latency  *prometheus.HistogramVec // network
	state    *prometheus.GaugeVec     // network, state
	sendTime prometheus.Histogram
}

// Reasons of the dropped counter: events accepted and deliberately not relayed.
const (
	dropLoop      = "loop"      // sent by one of our puppets, ghosts or bots
	dropDuplicate = "duplicate" // origin already processed
	dropNoRoute   = "no_route"  // channel in no route
	dropDirection = "direction" // the channel's direction excludes it
	dropKind      = "kind"      // a kind the destination cannot show (recorded only)
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "statusgate", Name: "events_in_total",
			Help: "Events accepted into the ledger, by route and origin network."}, []string{"route", "network"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "statusgate", Name: "events_out_total",
			Help: "Deliveries completed, by route and destination network."}, []string{"route", "network"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "statusgate", Name: "events_dropped_total",
			Help: "Events deliberately not relayed, by reason (loop, duplicate, no_route, direction, kind, rate_limited, new_senders, not_author)."}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "statusgate", Name: "delivery_retries_total",
			Help: "Failed delivery attempts that will be retried, by destination network."}, []string{"network"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "statusgate", Name: "delivery_failures_total",
			Help: "Deliveries ended failed (permanent error, attempts exhausted or queue overflow), by destination network."}, []string{"network"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "statusgate", Name: "queue_depth",
			Help: "Pending outbox entries, by destination channel."}, []string{"dest"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "statusgate", Name: "delivery_latency_seconds",
			Help:    "Time from acceptance to completed delivery, by destination network.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}, []string{"network"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "statusgate", Name: "connector_state",
			Help: "1 for each connector's current state, 0 for the others."}, []string{"network", "state"}),
		sendTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "statusgate", Name: "status_send_seconds",
			Help:    "Time to seal (proof of work included) and post one message into Status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.in, m.out, m.dropped, m.retries, m.failures, m.depth, m.latency, m.state, m.sendTime)
	}
	return m
}

func (m *metrics) setState(network string, s bridges.State) {
	for st := bridges.StateUnknown; st <= bridges.StateBadCredentials; st++ {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(network, st.String()).Set(v)
	}
}
