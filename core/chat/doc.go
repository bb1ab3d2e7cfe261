// Package chat encodes and decodes the Status chat payloads that travel inside Whisper
// messages, in both generations Status used: the late-2019 Transit JSON records (`c4`
// messages, optionally inside the 4001/4002 StatusProtocolMessage wrapper) and the
// protobuf ApplicationMetadataMessage + ChatMessage of status-go ≥ v0.38 (app 1.0).
// PROTOCOL.md §7 is the reference; section numbers in comments point into it.
//
// It provides:
//   - one format-neutral Message type, with Encode (Transit, Protobuf; SendFormat `both`
//     yields two payloads) and Decode, which detects the format (see Decode for the rule)
//     and recovers the author from the wrapper or metadata signature;
//   - public chat naming: ValidateChatName, PublicChatTopic, PublicChatKey (§3.3);
//   - the message id keccak256(author pubkey ‖ payload) (§7.5);
//   - a per-chat Lamport Clock and the Less ordering (§7.4).
//
// Everything here is a pure function of its inputs: no I/O, no goroutines, no global
// state, time passed in by the caller. Decoders treat their input as hostile: every
// malformed payload is an error wrapping one of the sentinels in errors.go, never a panic.
//
// It must not know about transport: it does not build envelopes, encrypt, pick topics for
// one-to-one chats, or decide which chats a node joins (core/whisper and the layers above
// do). It does not implement the secure-transport (ProtocolMessage, double ratchet) or
// MVDS layers, group membership (`g5`) or contact records: those Transit tags decode to
// ErrUnsupportedRecord, and ApplicationMetadataMessage types other than CHAT_MESSAGE to
// ErrUnsupportedType.
package chat
