// Package whisper implements the Whisper v6 data layer exactly as Status deployed it in
// 2019 (EIP-627 as coded in go-ethereum v1.9.x whisperv6, the implementation Status forked):
// envelopes and their RLP form, proof of work, topics and bloom filters, the message
// framing inside an envelope (flags, size field, padding, signature), symmetric AES-256-GCM
// and asymmetric ECIES encryption, and filters that route an envelope to the subscriptions
// that can open it.
//
// Where EIP-627 and the deployed code disagree, this package follows the code (see
// PROTOCOL.md §12 in the shared docs): PoW divides by the length of the short RLP, bloom
// bits are set by assignment, signatures carry V = 0/1, PBKDF2 runs 65356 rounds.
//
// The package does no I/O and starts no goroutines. Time and randomness come in through
// MessageParams and SealOptions so tests can fix them. Envelope values are immutable once
// built and safe to share between goroutines; Filters is safe for concurrent use.
//
// It must not know about peers, pools or anything above the envelope: the shh/6 protocol
// handler builds on it, and Status payload formats live in core/chat.
package whisper
