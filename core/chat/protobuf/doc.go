// Package protobuf holds the generated Go code for the Status payload messages that
// core/chat reads and writes: ApplicationMetadataMessage, ChatMessage, StickerMessage and
// the late-2019 StatusProtocolMessage wrapper. The .proto files next to it are the source;
// regenerate with `make generate` and commit the result. Nothing else belongs here: the
// codecs, signature checks and validation live in core/chat.
package protobuf
