// Package ratchet is the secure transport of Status 1:1 messages, wire-compatible with
// status-go's protocol/encryption (v0.36 through v0.70.1; PROTOCOL.md §3.4–3.6, §5):
// identity and installation id, X3DH prekey bundles (created, signed, verified against the
// Whisper signer, stored, refreshed after 24 h, newer replacing older, at most 3
// installations per identity), X3DH without one-time prekeys, the Double Ratchet through
// github.com/status-im/doubleratchet over secp256k1 with status-go's limits, the DH
// fallback for recipients whose bundle is unknown, the ProtocolMessage envelope, the
// bundle-back answer to messages not addressed to this installation, contact-code
// advertisement, and the topic rules: partitioned topic until the shared secret is agreed
// with every installation of the peer, then the negotiated topic.
//
// A Ratchet serves one identity (the gateway's key or a puppet's). It encrypts a payload
// for every known installation of a recipient (Encrypt) and decrypts what arrives (Receive),
// telling the caller which Whisper topic and key to use and which negotiated topics to
// listen on. It never sends or subscribes itself: core/status owns the Whisper side. All
// state lives behind the Store interface (implemented by package store, SQLite and
// PostgreSQL), and every ratchet step is committed in one Store call before its result is
// returned, so a restart continues every conversation. A received message's key stays
// stored until the caller reports the message processed (Processed).
//
// Every remote input is untrusted: a message that fails a check is dropped with a
// sentinel error (errors.go), counted by reason (Stats) and logged at Debug; nothing a
// peer sends can panic, grow storage without bound or stall other sessions for long.
//
// The package must not import core/chat (payloads ride inside it), core/status or
// anything above.
package ratchet
