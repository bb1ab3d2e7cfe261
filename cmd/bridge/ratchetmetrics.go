package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
)

// ratchetCollector exports the secure transport's counters, summed over the Ratchets of
// our identities (the puppets' bundles for the wrapped send format, and any identity
// an SDK user serves), to Prometheus.
type ratchetCollector struct {
	pool   *status.RatchetPool
	client *status.Client
}

var (
	descRatchetIdentities = prometheus.NewDesc("statusgate_ratchet_identities",
		"Our identities with a secure transport (Ratchet) in use.", nil, nil)
	descRatchetSessions = prometheus.NewDesc("statusgate_ratchet_sessions_started_total",
		"Double Ratchet sessions started by X3DH, by our role: initiator (our first message to an installation) or responder (a peer's).",
		[]string{"role"}, nil)
	descRatchetEncrypted = prometheus.NewDesc("statusgate_ratchet_messages_encrypted_total",
		"Direct message copies encrypted, by mode (dh, x3dh: a session's first, dr).", []string{"mode"}, nil)
	descRatchetDecrypted = prometheus.NewDesc("statusgate_ratchet_messages_decrypted_total",
		"Direct message copies decrypted, by mode (dh, x3dh: a session's first, dr).", []string{"mode"}, nil)
	descRatchetFailures = prometheus.NewDesc("statusgate_ratchet_decrypt_failures_total",
		"Received protocol messages dropped by the secure transport, by reason (store: our store failed, nothing committed).",
		[]string{"reason"}, nil)
	descRatchetBundles = prometheus.NewDesc("statusgate_ratchet_bundles_received_total",
		"Bundles received and verified (in direct, contact-code and wrapped public messages).", nil, nil)
	descRatchetRefused = prometheus.NewDesc("statusgate_ratchet_work_refused_total",
		"Work remote input asked for beyond the budgets (docs/security.md): x3dh sessions refused, bundles not stored, "+
			"new negotiated secrets deferred.", []string{"work"}, nil)
	descRatchetDeferred = prometheus.NewDesc("statusgate_ratchet_deferred_total",
		"X3DH messages the work budgets refused, by outcome: deferred (kept for a retry), retried (processed once the budgets "+
			"allowed), dropped (by the queue's overflow policy, drop-oldest-of-the-largest-sender, or too large to keep).",
		[]string{"outcome"}, nil)
	descRatchetDeferredQueued = prometheus.NewDesc("statusgate_ratchet_deferred_queued",
		"X3DH messages kept now until the work budgets allow them.", nil, nil)
	descRatchetTopicKeys = prometheus.NewDesc("statusgate_ratchet_topic_keys_derived_total",
		"Negotiated-topic keys derived (PBKDF2).", nil, nil)
	descRatchetPeers = prometheus.NewDesc("statusgate_ratchet_peers_evicted_total",
		"Peer identities forgotten to keep ratchet MaxPeers (evicted), or not stored because every kept peer is pinned (refused).",
		[]string{"outcome"}, nil)
)

func (c ratchetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRatchetIdentities, descRatchetSessions, descRatchetEncrypted, descRatchetDecrypted,
		descRatchetFailures, descRatchetBundles, descRatchetRefused, descRatchetDeferred, descRatchetDeferredQueued,
		descRatchetTopicKeys, descRatchetPeers} {
		ch <- d
	}
}

func (c ratchetCollector) Collect(ch chan<- prometheus.Metric) {
	s, n := c.pool.Stats()
	gauge := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descRatchetIdentities, uint64(n))
	counter(descRatchetSessions, s.SentX3DH, "initiator")
	counter(descRatchetSessions, s.ReceivedX3DH, "responder")
	for _, m := range []struct {
		mode          string
		sent, receive uint64
	}{{"dh", s.SentDH, s.ReceivedDH}, {"x3dh", s.SentX3DH, s.ReceivedX3DH}, {"dr", s.SentDR, s.ReceivedDR}} {
		counter(descRatchetEncrypted, m.sent, m.mode)
		counter(descRatchetDecrypted, m.receive, m.mode)
	}
	for reason, v := range ratchetFailures(s) {
		counter(descRatchetFailures, v, reason)
	}
	var verified uint64
	if c.client != nil {
		verified = c.client.Stats().BundlesVerified
	}
	counter(descRatchetBundles, s.BundlesReceived+verified)
	counter(descRatchetRefused, s.RefusedX3DH, ratchet.WorkX3DH.String())
	counter(descRatchetRefused, s.RefusedBundles, ratchet.WorkBundle.String())
	counter(descRatchetRefused, s.DeferredSecrets, ratchet.WorkSecret.String())
	counter(descRatchetDeferred, s.Deferred, "deferred")
	counter(descRatchetDeferred, s.DeferredRetried, "retried")
	counter(descRatchetDeferred, s.DeferredDropped, "dropped")
	gauge(descRatchetDeferredQueued, s.DeferredQueued)
	counter(descRatchetTopicKeys, s.TopicKeysDerived)
	counter(descRatchetPeers, s.PeersEvicted, "evicted")
	counter(descRatchetPeers, s.PeersRefused, "refused")
}

// ratchetFailures names ratchet.Stats' drop counters as the metric's reasons.
func ratchetFailures(s ratchet.Stats) map[string]uint64 {
	return map[string]uint64{
		"not_protocol_message": s.NotProtocolMessage, "malformed": s.Malformed,
		"bundle_signature": s.BundleSignature, "bundle_signer": s.BundleSigner,
		"too_many_installations": s.TooManyInstallations, "too_many_bundles": s.TooManyBundles,
		"unknown_prekey": s.UnknownPrekey, "unknown_installation": s.UnknownInstallation,
		"session_not_found": s.SessionNotFound, "replay": s.Replay, "too_many_skipped": s.TooManySkipped,
		"decrypt": s.Decrypt, "no_key_header": s.NoKeyHeader, "store": s.StoreErrors,
	}
}
