package chat

import (
	"testing"
	"time"
)

// benchDecode measures the per-message receive path: decode, message id, dedupe lookup.
func benchDecode(b *testing.B, payload []byte) {
	author := &keyFrom(b, "alice").PublicKey
	seen := make(map[ID]struct{}, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		d, err := Decode(payload)
		if err != nil {
			b.Fatal(err)
		}
		a := d.Author
		if a == nil {
			a = author // bare Transit: the Whisper signer
		}
		id, err := MessageID(a, payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
		}
	}
}

func BenchmarkDecodeTransit(b *testing.B) {
	benchDecode(b, readTestdata(b, "transit/c4_public.transit"))
}

func BenchmarkDecodeProtobuf(b *testing.B) {
	benchDecode(b, readTestdata(b, "protobuf/chat_text.bin"))
}

func benchMessage() *Message {
	return &Message{Clock: uint64(time.UnixMilli(1575000000000).UnixMilli()), Timestamp: 1575000000000,
		Text: "hello from the bridge", ChatID: "status", MessageType: MessageTypePublicGroup, ContentType: ContentTextPlain}
}

func BenchmarkEncodeTransit(b *testing.B) {
	m := benchMessage()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m, FormatTransit, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeProtobuf(b *testing.B) {
	m, key := benchMessage(), keyFrom(b, "alice")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m, FormatProtobuf, key); err != nil {
			b.Fatal(err)
		}
	}
}
