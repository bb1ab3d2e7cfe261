// Package statusref builds and drives statusgo-ref (test/statusgo), the status-go
// v0.70.1 reference peer: a real status-go Messenger over Whisper v6 as a separate
// process, for interop tests of the secure transport, 1:1 and public chats, and (by
// extension of its op table) mailservers, MVDS and Waku.
//
// Start builds the binary on first use (cached by content hash under
// ~/.cache/statusgate, built under a file lock), starts it with a given identity,
// installation and database, and returns a Node with typed methods, one per op, and
// event channels: received messages with the envelope they came in (topic, signer,
// sender installation, encryption mode), sent envelopes, installations and peer events.
// StartEncryption runs status-go's protocol/encryption alone ("encryption" mode) for
// byte-level interop with core/ratchet, and Vectors prints its key schedule on fixed keys.
//
// It must not be imported by non-test code (test/archtest enforces this).
package statusref
