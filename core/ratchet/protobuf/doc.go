// Package protobuf holds the generated Go code for the secure-transport messages of
// status-go's protocol/encryption: ProtocolMessage, DirectMessageProtocol, the X3DH, DR and
// DH headers, Bundle and SignedPreKey. protocol_message.proto is the source; regenerate with
// `make generate` and commit the result. Nothing else belongs here: encoding limits,
// signatures and the ratchet itself live in core/ratchet.
package protobuf
