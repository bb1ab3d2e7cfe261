// Package status is the Go SDK of a Status node: "tune in to what you want to hear and
// say". A Client joins public chats on a Whisper transport (core/node), delivers each
// chat's messages as a stream — author key, three-word alias, clock, timestamp, text —
// and sends text into a chat as a given identity.
//
// It applies the public-chat rules of Status clients (PROTOCOL.md §3.3, §7): topic and
// symmetric key from the bare chat name, signed envelopes with TTL 15 and PoW 0.002 by
// default, unsigned envelopes dropped, both payload generations (Transit and protobuf)
// accepted and either or both sent, message ids, Lamport clocks with the receive cap, and
// duplicate suppression. Everything it drops is counted by reason (Client.Stats) and
// logged at Debug.
//
// It knows nothing of bridges, storage or other networks; the gateway builds on it.
package status
