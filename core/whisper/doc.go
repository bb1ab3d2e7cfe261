// Package whisper implements Whisper v6 (shh/6) exactly as Status deployed it in 2019
// (EIP-627 as coded in go-ethereum v1.9.x whisperv6, the implementation Status forked).
//
// The data layer: envelopes and their RLP form, proof of work, topics and bloom filters,
// the message framing inside an envelope (flags, size field, padding, signature),
// symmetric AES-256-GCM and asymmetric ECIES encryption, and filters that route an
// envelope to the subscriptions that can open it. These types do no I/O and start no
// goroutines; time and randomness come in through MessageParams and SealOptions.
//
// The node: Service holds the envelope pool, the subscriptions and the node's settings,
// and serves peers through Protocols (the shh/6 devp2p subprotocol: handshake, envelope
// gossip every 300 ms filtered by each peer's PoW requirement and bloom, the receive-side
// rules of §2.10 with geth's disconnect policy, status-go's confirmations, and hooks for
// the mailserver codes 125–127). Service.Run owns the expiry cycle and the decrypting
// workers; each peer's handler, run by the p2p server, owns that peer's broadcast loop.
//
// Where EIP-627 and the deployed code disagree, this package follows the code (see
// PROTOCOL.md §12 in the shared docs): PoW divides by the length of the short RLP, bloom
// bits are set by assignment, signatures carry V = 0/1, PBKDF2 runs 65356 rounds.
//
// It does not dial or listen (core/node runs the p2p server) and knows nothing of Status
// payload formats (core/chat).
package whisper
