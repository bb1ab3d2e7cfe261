// Package gateway is the router between the Status side (core/status) and the
// connectors (bridges.Connector): routes from configuration, loop and duplicate
// filtering, the cross-network message map, and one ordered, bounded, persisted outbox
// per destination channel.
//
// Every event is written to the Ledger before it is acknowledged (Host.Deliver returns,
// or the Status message is taken off the chat), then delivered by the destination's
// outbox goroutine at least once, with the same idempotency key on every retry; a
// delivery that keeps failing ends in the failed state, which is logged, counted and
// kept in the ledger. Remote users speak into Status as their own puppet keys
// (package puppet), with a nick prefix.
package gateway
