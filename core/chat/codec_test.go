package chat

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/russolsen/transit"
	"google.golang.org/protobuf/proto"

	pb "github.com/statusgate/statusgate/core/chat/protobuf"
)

// Every Transit example decodes to its golden view; canonical ones (what late-2019
// status-react writes) re-encode byte for byte.
func TestDecode_transitGolden(t *testing.T) {
	cases := []struct {
		file      string
		canonical bool
	}{
		{"c4_public", true}, // PROTOCOL.md §7.1 example
		{"c4_reply_ens", true},
		{"c4_sticker", true},
		{"c4_bigclock", true},
		{"c4_cache", false}, // cache references ^1/^2 and a trailing element
		{"c7_old", false},
		{"c4_scalar_content", false},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			in := readTestdata(t, "transit/"+tc.file+".transit")
			d, err := Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "transit/"+tc.file+".decoded.json", viewOf(d))
			out, err := Encode(d.Message, FormatTransit, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.canonical && !bytes.Equal(out, in) {
				t.Errorf("re-encode differs\n got: %s\nwant: %s", out, in)
			}
			d2, err := Decode(out)
			if err != nil {
				t.Fatalf("decode re-encoded: %v", err)
			}
			if !sameMessage(d.Message, d2.Message) {
				t.Errorf("re-encoded message differs: %+v vs %+v", d.Message, d2.Message)
			}
		})
	}
}

// The v1 wrapper: a wrapped c4 signed by privA decodes with author pubA and re-encodes
// byte for byte (signatures are deterministic).
func TestDecode_wrapperGolden(t *testing.T) {
	a := keyFrom(t, "alice")
	d, err := Decode(readTestdata(t, "transit/c4_public.transit"))
	if err != nil {
		t.Fatal(err)
	}
	d.Message.Wrapped = true
	b, err := Encode(d.Message, FormatTransit, a)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transit/c4_public.wrapped.bin", b)
	got, err := Decode(readTestdata(t, "transit/c4_public.wrapped.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Message.Wrapped || pubHex(got.Author) != pubHex(&a.PublicKey) || got.Message.Signer != got.Author {
		t.Errorf("wrapped=%v author=%s", got.Message.Wrapped, pubHex(got.Author))
	}
	golden(t, "transit/c4_public.wrapped.decoded.json", viewOf(got))

	// Unsigned wrapper: decodes, no author.
	unsigned := append([]byte{0x92, 0xfa, 0x01}, protoLen(readTestdata(t, "transit/c4_public.transit"))...)
	got, err = Decode(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if got.Author != nil || !got.Message.Wrapped {
		t.Errorf("unsigned wrapper: author=%v wrapped=%v", got.Author, got.Message.Wrapped)
	}
}

// protoLen prefixes b with its varint length (b shorter than 16 KiB).
func protoLen(b []byte) []byte {
	n := len(b)
	if n < 128 {
		return append([]byte{byte(n)}, b...)
	}
	return append([]byte{byte(n&0x7f | 0x80), byte(n >> 7)}, b...)
}

func protoGoldenMessages() map[string]*Message {
	return map[string]*Message{
		"chat_text": {
			Clock: 1575000000000, Timestamp: 1575000000000, Text: "hello", ChatID: "status",
			MessageType: MessageTypePublicGroup, ContentType: ContentTextPlain,
		},
		"chat_reply": {
			Clock: 1575000000001, Timestamp: 1575000000001, Text: "re: ünïcødé",
			ResponseTo: "0xa1eb988db8bad3b9d380e19dcebc68bcfc46972b1ec8b597867c38b9f1a0f590", ENSName: "alice.stateofus.eth",
			ChatID:      "0x04261c55675e55ff25edb50b345cfb3a3f35f60712d251cbaaab97bd50054c6ebc3cd4e22200c68daf7493e1f8da6a190a68a671e2d3977809612424c7c3888bc6",
			MessageType: MessageTypeOneToOne, ContentType: ContentTextPlain,
		},
		"chat_sticker": {
			Clock: 1575000000002, Timestamp: 1575000000002, Text: "Update to latest version to see a nice sticker here!",
			ChatID: "status", MessageType: MessageTypePublicGroup, ContentType: ContentSticker,
			Sticker: &Sticker{Hash: "e3010170122061d2d4c2b2cbd2d5af2ba45ab8d7c6b7a9bf7ad53c6bf9cd3c2ad1c4d6cbe0a1", Pack: 1},
		},
		"chat_maxclock": {
			Clock: math.MaxUint64, Timestamp: 1575000000003, Text: "huge clock", ChatID: "status",
			MessageType: MessageTypePublicGroup, ContentType: ContentEmoji,
		},
	}
}

// Protobuf: fixed messages signed with privA encode to the golden bytes and decode back.
func TestEncode_protobufGolden(t *testing.T) {
	a := keyFrom(t, "alice")
	for name, m := range protoGoldenMessages() {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(m, FormatProtobuf, a)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "protobuf/"+name+".bin", b)
			d, err := Decode(readTestdata(t, "protobuf/"+name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			if pubHex(d.Author) != pubHex(&a.PublicKey) || d.Message.Format != FormatProtobuf {
				t.Errorf("author %s format %v", pubHex(d.Author), d.Message.Format)
			}
			if !sameMessage(m, d.Message) {
				t.Errorf("decoded %+v, want %+v", d.Message, m)
			}
			golden(t, "protobuf/"+name+".decoded.json", viewOf(d))
		})
	}
}

// The §13 cache shape (a g5 with repeated map keys): the library resolves ^n, and Decode
// reports the record as unsupported rather than failing.
func TestParseTransit_cacheVector(t *testing.T) {
	in := `["~#g5",["chat",[["^ ","~:clock-value",1,"~:type","chat-created"],["^ ","^1",2,"^2","members-added"]]]]`
	v, err := parseTransit([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	events := v.(transit.TaggedValue).Value.([]interface{})[1].([]interface{})
	second := events[1].(map[interface{}]interface{})
	if second[transit.Keyword("clock-value")] != int64(2) || second[transit.Keyword("type")] != "members-added" {
		t.Errorf("cache not resolved: %#v", second)
	}
	_, err = Decode([]byte(in))
	var ure *UnsupportedRecordError
	if !errors.As(err, &ure) || ure.Tag != "g5" || !errors.Is(err, ErrUnsupportedRecord) {
		t.Errorf("err = %v, want UnsupportedRecordError{g5}", err)
	}
}

// The writer's cache: a repeated keyword becomes a reference with the reader's numbering.
func TestTransitWriter_cache(t *testing.T) {
	var w transitWriter
	w.raw("[")
	w.cached("~#c4")
	w.raw(",")
	w.cached("~:chat-id")
	w.raw(",")
	w.cached("~:chat-id")
	w.raw(",")
	w.cached("~:a") // too short to cache
	w.raw("]")
	if got := string(w.buf); got != `["~#c4","~:chat-id","^1","~:a"]` {
		t.Errorf("got %s", got)
	}
	for i, want := range map[int]string{0: "^0", 43: "^[", 44: "^10", 44*44 - 1: "^[["} {
		if got := cacheCode(i); got != want {
			t.Errorf("cacheCode(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestDecode_badInput(t *testing.T) {
	a := keyFrom(t, "alice")
	long := strings.Repeat("é", MaxTextLength+1)
	c4 := func(text, ct, mt, clock string) string {
		return `["~#c4",["` + text + `","` + ct + `","~:` + mt + `",` + clock + `,1,["^ ","~:chat-id","status","~:text","` + text + `"]]]`
	}
	pbText := func(m *Message) []byte {
		b, err := encodeProtobuf(m, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ok := &Message{Clock: 1, Timestamp: 1, Text: "x", ChatID: "status", MessageType: MessageTypePublicGroup, ContentType: ContentTextPlain}
	tooLong := *ok
	tooLong.Text = long
	sysMsg := *ok
	sysMsg.MessageType = MessageTypeSystemMessagePrivateGroup

	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrUnknownFormat},
		{"garbage", []byte("hello"), ErrUnknownFormat},
		{"leading space", []byte(" " + c4("x", "text/plain", "public-group-user-message", "1")), ErrUnknownFormat},
		{"truncated json", []byte(`["~#c4",["hello","text/pl`), ErrMalformedTransit},
		{"invalid json", []byte(`[,]`), ErrMalformedTransit},
		{"trailing data", []byte(c4("x", "text/plain", "public-group-user-message", "1") + `[]`), ErrMalformedTransit},
		{"tag without value", []byte(`["~#c4"]`), ErrMalformedTransit},
		{"odd map-as-array", []byte(`["^ ","k"]`), ErrMalformedTransit},
		{"unhashable key", []byte(`["^ ",[1],2]`), ErrMalformedTransit},
		{"empty rune", []byte(`["~c"]`), ErrMalformedTransit},
		{"unknown cache ref", []byte(`["^5",[]]`), ErrMalformedTransit},
		{"not a record", []byte(`[1,2,3]`), ErrMalformedTransit},
		{"c4 value not array", []byte(`["~#c4","x"]`), ErrMalformedTransit},
		{"too few fields", []byte(`["~#c4",["x","text/plain","~:user-message",1]]`), ErrMalformedTransit},
		{"negative clock", []byte(c4("x", "text/plain", "user-message", "-1")), ErrMalformedTransit},
		{"float clock", []byte(c4("x", "text/plain", "user-message", "1.5")), ErrMalformedTransit},
		{"huge clock ~i", []byte(c4("x", "text/plain", "user-message", `"~i99999999999999999999"`)), ErrMalformedTransit},
		{"bigint clock ~n", []byte(c4("x", "text/plain", "user-message", `"~n99999999999999999999"`)), ErrMalformedTransit},
		{"clock string", []byte(c4("x", "text/plain", "user-message", `"1"`)), ErrMalformedTransit},
		{"content-type not string", []byte(`["~#c4",["x",1,"~:user-message",1,1]]`), ErrMalformedTransit},
		{"unknown content-type", []byte(c4("x", "image", "user-message", "1")), ErrInvalidMessage},
		{"unknown message-type", []byte(c4("x", "text/plain", "broadcast", "1")), ErrInvalidMessage},
		{"system message", []byte(c4("x", "text/plain", "system-message", "1")), ErrInvalidMessage},
		{"content list", []byte(`["~#c4",[[1],"emoji","~:user-message",1,1]]`), ErrMalformedTransit},
		{"chat-id not string", []byte(`["~#c4",["x","text/plain","~:user-message",1,1,["^ ","~:chat-id",5]]]`), ErrMalformedTransit},
		{"pack out of range", []byte(`["~#c4",[["^ ","~:pack",9999999999],"sticker","~:user-message",1,1]]`), ErrMalformedTransit},
		{"transit text too long", []byte(c4(long, "text/plain", "user-message", "1")), ErrTooLong},
		{"transit chat id too long", []byte(`["~#c4",["x","text/plain","~:user-message",1,1,["^ ","~:chat-id","` + strings.Repeat("a", MaxFieldLength+1) + `"]]]`), ErrTooLong},
		{"c2", []byte(`["~#c2",["name","img","0xaddr",null,null]]`), ErrUnsupportedRecord},
		{"c3", []byte(`["~#c3",["name","img","0xaddr",null,null]]`), ErrUnsupportedRecord},
		{"c5", []byte(`["~#c5",["a","b"]]`), ErrUnsupportedRecord},
		{"c6", []byte(`["~#c6",["name","img","0xaddr",null,null]]`), ErrUnsupportedRecord},
		{"p1", []byte(`["~#p1",[["^ "],null,null]]`), ErrUnsupportedRecord},
		{"p2", []byte(`["~#p2",["id","mobile","name",null]]`), ErrUnsupportedRecord},
		{"wrapper around protobuf", append([]byte{0x92, 0xfa, 0x01}, protoLen(pbText(ok))...), ErrUnknownFormat},
		{"wrapper bad signature length", append([]byte{0x8a, 0xfa, 0x01, 0x02, 0x01, 0x02, 0x92, 0xfa, 0x01}, protoLen([]byte(c4("x", "text/plain", "user-message", "1")))...), ErrBadSignature},
		{"wrapper and metadata fields", append([]byte{0x18, 0x01, 0x92, 0xfa, 0x01}, protoLen([]byte("[]"))...), ErrUnknownFormat},
		{"protobuf truncated", pbText(ok)[:20], ErrUnknownFormat},
		{"metadata wrong wire type", []byte{0x10, 0x01, 0x18, 0x01}, ErrMalformedProtobuf},
		{"metadata no signature", []byte{0x12, 0x00, 0x18, 0x01}, ErrBadSignature},
		{"metadata type contact update", withType(pbText(ok), 2), ErrUnsupportedType},
		{"metadata type unknown", withType(pbText(ok), 999), ErrUnsupportedType},
		{"metadata type zero", withType(pbText(ok), 0), ErrUnsupportedType},
		{"bad signature V", withSigByte(pbText(ok), 64, 7), ErrBadSignature},
		{"bad signature R zero", withSigZeroR(pbText(ok)), ErrBadSignature},
		{"chat message wrong wire type", signedChat(t, []byte{0x1a, 0x01, 'x', 0x18, 0x05}, a), ErrMalformedProtobuf},
		{"chat message garbage", signedChat(t, []byte{0xff, 0xff}, a), ErrMalformedProtobuf},
		{"chat message invalid utf-8", signedChat(t, []byte{0x1a, 0x01, 0xff}, a), ErrMalformedProtobuf},
		{"protobuf text too long", pbText(&tooLong), ErrTooLong},
		{"protobuf system message", pbText(&sysMsg), ErrInvalidMessage},
		{"protobuf unknown content type", signedChat(t, []byte{0x38, 0x02, 0x40, 0x09}, a), ErrInvalidMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %+v, %v; want %v", d, err, tc.want)
			}
		})
	}
}

// withType rewrites the type field (last two bytes 0x18 0x01 of our encoder's output).
func withType(b []byte, typ int) []byte {
	out := append([]byte(nil), b[:len(b)-2]...)
	out = append(out, 0x18)
	for v := uint(typ); ; v >>= 7 {
		if v < 0x80 {
			return append(out, byte(v))
		}
		out = append(out, byte(v&0x7f|0x80))
	}
}

// withSigByte sets byte i of the signature (field 1 starts at offset 2: 0x0a 0x41).
func withSigByte(b []byte, i int, v byte) []byte {
	out := append([]byte(nil), b...)
	out[2+i] = v
	return out
}

func withSigZeroR(b []byte) []byte {
	out := append([]byte(nil), b...)
	clear(out[2 : 2+32])
	return out
}

// signedChat builds an ApplicationMetadataMessage around arbitrary ChatMessage bytes.
func signedChat(t *testing.T, chat []byte, a *ecdsa.PrivateKey) []byte {
	t.Helper()
	sig, err := signPayload(chat, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&pb.ApplicationMetadataMessage{Signature: sig, Payload: chat, Type: pb.ApplicationMetadataMessage_CHAT_MESSAGE})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
