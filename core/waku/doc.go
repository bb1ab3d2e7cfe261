// Package waku is the Waku wire of a Whisper node: waku/1 and waku/0 (status-go
// v0.70.1's waku/v1 and waku/v0, PROTOCOL.md §10) beside shh/6 on the same
// whisper.Service. Envelopes, proof of work, acceptance rules, the pool, filters,
// subscriptions, eager forwarding and the mailserver codes are the service's, so an
// envelope accepted from a Whisper peer is offered to Waku peers and the other way
// round; this package has what differs on the wire: the handshake's association list of
// options (options.go), the Status Update packet (code 22), topic interest, Waku's rate
// limit options, and status-go's leniency towards bad envelopes (reported in code 12,
// the peer kept).
package waku
