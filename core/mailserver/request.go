package mailserver

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// RequestForm says which of the §4 request encodings a request came in.
type RequestForm uint8

const (
	// FormPayload: an envelope whose payload is the late-2019 RLP MessagesRequestPayload
	// [Lower, Upper, Bloom, Limit, Cursor, Batch] (status-go before bc2d0184, REACT 0.x).
	FormPayload RequestForm = iota + 1
	// FormBinary: an envelope whose payload is lower(4) ‖ upper(4) [‖ bloom(64) [‖
	// limit(4) [‖ cursor]]] big-endian (geth v6's client and status-go's legacy form).
	FormBinary
	// FormStruct: the packet body is the RLP struct MessagesRequest [ID, From, To,
	// Limit, Cursor, Bloom] (status-go's Messenger), or Waku's with a seventh field,
	// Topics; no envelope.
	FormStruct
	// FormTopics: an envelope whose payload is the RLP MessagesRequestPayload with
	// Topics: [Lower, Upper, Bloom, Topics, Limit, Cursor, Batch] (status-go from
	// bc2d0184, 2020-01-21: every app from 1.0 on, and v0.70.1's shhext.RequestMessages).
	FormTopics
)

// ParseRequestForm parses a form's name as String gives it: "topics", "payload",
// "struct" or "binary".
func ParseRequestForm(s string) (RequestForm, error) {
	for _, f := range []RequestForm{FormTopics, FormPayload, FormStruct, FormBinary} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("request form %q: want topics, payload or struct", s)
}

func (f RequestForm) String() string {
	switch f {
	case FormPayload:
		return "payload"
	case FormBinary:
		return "binary"
	case FormStruct:
		return "struct"
	case FormTopics:
		return "topics"
	}
	return "unknown"
}

// MaxRequestTopics bounds a request's topic list (a Status app asks for its chats'
// topics, tens to hundreds); a longer list is refused with an ERROR= completion.
const MaxRequestTopics = 10000

// Request is a decoded history request.
type Request struct {
	ID           [32]byte // the request envelope's hash, or the struct's ID
	Form         RequestForm
	Lower, Upper uint32 // created-time bounds, inclusive; Upper 0 means now + 60 s
	Bloom        whisper.Bloom
	// Topics, when not empty, selects exactly these topics, and the bloom is ignored
	// (status-go's server does the same). Distinct, in request order.
	Topics []whisper.Topic
	Limit  uint32 // 0 means the server's default
	Cursor []byte // empty or CursorLength bytes
	Batch  bool   // several envelopes per code-127 packet
	Signer *ecdsa.PublicKey
}

// messagesRequestPayload is the late-2019 MessagesRequestPayload; Batch is optional
// (SPEC lists five fields).
type messagesRequestPayload struct {
	Lower, Upper uint32
	Bloom        []byte
	Limit        uint32
	Cursor       []byte
	Batch        bool `rlp:"optional"`
}

// messagesRequestPayloadTopics is status-go's MessagesRequestPayload from bc2d0184
// (v0.70.1 mailserver/request.go), which always encodes all seven fields; Batch is
// optional here to accept a six-field encoding of it too.
type messagesRequestPayloadTopics struct {
	Lower, Upper uint32
	Bloom        []byte
	Topics       [][]byte
	Limit        uint32
	Cursor       []byte
	Batch        bool `rlp:"optional"`
}

// messagesRequest is status-go's MessagesRequest struct form (whisper/message.go);
// Waku's (waku/common/message.go) adds Topics.
type messagesRequest struct {
	ID     []byte
	From   uint32
	To     uint32
	Limit  uint32
	Cursor []byte
	Bloom  []byte
	Topics [][]byte `rlp:"optional"`
}

// maxStructLimit is status-go's bound on the struct form's Limit.
const maxStructLimit = 1000

// Keys are what a server opens request envelopes with.
type Keys struct {
	Sym  *whisper.SymKey   // from the mailserver password
	Asym *ecdsa.PrivateKey // the node key, for requests encrypted to it; may be nil
}

// DecodeRequest decodes a code-126 packet body in any of the §4 forms: first as an
// envelope (opened with keys, asymmetric first, and required to be signed and to meet
// minPoW), then as the MessagesRequest struct. The returned Request carries the ID to
// answer with even when err is not nil: the envelope's hash, the struct's ID, or, for a
// body that is neither, its Keccak-256 (what an envelope's hash would be).
func DecodeRequest(body []byte, keys Keys, minPoW float64) (*Request, error) {
	env, envErr := whisper.DecodeEnvelope(body)
	if envErr != nil {
		return decodeStruct(body, envErr)
	}
	req := &Request{ID: env.Hash()}
	if minPoW > 0 && env.PoW() < minPoW {
		return req, fmt.Errorf("request %x: %w: %.3g < %g", req.ID[:4], ErrRequestPoW, env.PoW(), minPoW)
	}
	var msg *whisper.ReceivedMessage
	var err error = ErrUndecryptable
	if keys.Asym != nil {
		msg, err = env.OpenAsymmetric(keys.Asym)
	}
	if err != nil && keys.Sym != nil {
		msg, err = env.OpenSymmetric(keys.Sym)
	}
	if err != nil {
		return req, fmt.Errorf("request %x: %w with the mailserver password or node key (wrong password?): %w", req.ID[:4], ErrUndecryptable, err)
	}
	if msg.Src == nil {
		return req, fmt.Errorf("request %x: %w", req.ID[:4], ErrUnsignedRequest)
	}
	req.Signer = msg.Src
	if err := req.parsePayload(msg.Payload); err != nil {
		return req, fmt.Errorf("request %x: %w", req.ID[:4], err)
	}
	return req, nil
}

// parsePayload decodes an envelope's payload. An RLP list is one of the two
// MessagesRequestPayload generations, told apart by the kind of the fourth element (a
// list: Topics; a string: Limit); anything else is the binary form. A binary payload
// never looks like a list: its first byte is the top byte of a Unix time, below 0xc0
// until 2072.
func (r *Request) parsePayload(p []byte) error {
	if elems, ok := rlpListElems(p); ok {
		if len(elems) >= 4 && elems[3] == rlp.List {
			var pl messagesRequestPayloadTopics
			if err := rlp.DecodeBytes(p, &pl); err != nil {
				return fmt.Errorf("%w: RLP payload with topics (7 fields): %w", ErrBadRequest, err)
			}
			r.Form, r.Lower, r.Upper, r.Limit, r.Batch = FormTopics, pl.Lower, pl.Upper, pl.Limit, pl.Batch
			if err := r.setTopics(pl.Topics); err != nil {
				return err
			}
			if err := r.setBloom(pl.Bloom); err != nil {
				return err
			}
			return r.setCursor(pl.Cursor)
		}
		var pl messagesRequestPayload
		if err := rlp.DecodeBytes(p, &pl); err != nil {
			return fmt.Errorf("%w: RLP payload (6 fields): %w", ErrBadRequest, err)
		}
		r.Form, r.Lower, r.Upper, r.Limit, r.Batch = FormPayload, pl.Lower, pl.Upper, pl.Limit, pl.Batch
		if err := r.setBloom(pl.Bloom); err != nil {
			return err
		}
		return r.setCursor(pl.Cursor)
	}
	// The binary form. geth's client sends 8 or 72 bytes; status-go's legacy form adds a
	// limit and a cursor (its own DB key: 36 or 40 bytes).
	r.Form = FormBinary
	switch n := len(p); {
	case n == 8:
		r.Bloom = whisper.FullBloom()
	case n == 72, n == 76, n == 76+CursorLength, n == 76+dbKeyLength:
		copy(r.Bloom[:], p[8:72])
		if n >= 76 {
			r.Limit = binary.BigEndian.Uint32(p[72:76])
		}
		if n > 76 {
			r.Cursor = append([]byte(nil), p[76:76+CursorLength]...)
		}
	default:
		return fmt.Errorf("%w: payload of %d bytes is neither an RLP MessagesRequestPayload nor the binary form (8, 72, 76, 112 or 116 bytes)", ErrBadRequest, n)
	}
	r.Lower, r.Upper = binary.BigEndian.Uint32(p[0:4]), binary.BigEndian.Uint32(p[4:8])
	return nil
}

// rlpListElems reports whether p is exactly one RLP list, and the kinds of its elements.
func rlpListElems(p []byte) ([]rlp.Kind, bool) {
	content, rest, err := rlp.SplitList(p)
	if err != nil || len(rest) != 0 {
		return nil, false
	}
	var kinds []rlp.Kind
	for len(content) > 0 && len(kinds) < 8 {
		k, _, tail, err := rlp.Split(content)
		if err != nil {
			return kinds, true // the typed decode reports it
		}
		kinds, content = append(kinds, k), tail
	}
	return kinds, true
}

func decodeStruct(body []byte, envErr error) (*Request, error) {
	var mr messagesRequest
	if err := rlp.DecodeBytes(body, &mr); err != nil {
		return &Request{ID: crypto.Keccak256Hash(body)}, fmt.Errorf("%w: neither an envelope (%v) nor a MessagesRequest (%v)", ErrBadRequest, envErr, err)
	}
	if len(mr.ID) != 32 {
		return &Request{ID: crypto.Keccak256Hash(body)}, fmt.Errorf("%w: MessagesRequest ID of %d bytes, want 32", ErrBadRequest, len(mr.ID))
	}
	r := &Request{Form: FormStruct, Lower: mr.From, Upper: mr.To, Limit: mr.Limit, Batch: true}
	copy(r.ID[:], mr.ID)
	if len(mr.Bloom) == 0 && len(mr.Topics) == 0 {
		return r, fmt.Errorf("%w: MessagesRequest without bloom", ErrBadRequest)
	}
	if mr.Limit > maxStructLimit {
		return r, fmt.Errorf("%w: MessagesRequest limit %d > %d", ErrBadRequest, mr.Limit, maxStructLimit)
	}
	if err := r.setTopics(mr.Topics); err != nil {
		return r, err
	}
	if err := r.setBloom(mr.Bloom); err != nil {
		return r, err
	}
	return r, r.setCursor(mr.Cursor)
}

func (r *Request) setBloom(b []byte) error {
	bl, err := whisper.BloomFromBytes(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	r.Bloom = bl
	return nil
}

func (r *Request) setTopics(ts [][]byte) error {
	if len(ts) > MaxRequestTopics {
		return fmt.Errorf("%w: %d topics, at most %d", ErrBadRequest, len(ts), MaxRequestTopics)
	}
	seen := make(map[whisper.Topic]bool, len(ts))
	for i, t := range ts {
		if len(t) != whisper.TopicLength {
			return fmt.Errorf("%w: topic %d of %d bytes, want %d", ErrBadRequest, i, len(t), whisper.TopicLength)
		}
		if tp := whisper.Topic(t); !seen[tp] {
			seen[tp] = true
			r.Topics = append(r.Topics, tp)
		}
	}
	return nil
}

// setCursor takes a cursor: empty, CursorLength bytes, or a whole status-go DB key
// (dbKeyLength: the cursor and the topic), of which the cursor part is kept.
func (r *Request) setCursor(c []byte) error {
	if len(c) != 0 && len(c) != CursorLength && len(c) != dbKeyLength {
		return fmt.Errorf("%w: %d bytes, want 0, %d or %d", ErrCursor, len(c), CursorLength, dbKeyLength)
	}
	if len(c) > 0 {
		r.Cursor = append([]byte(nil), c[:CursorLength]...)
	}
	return nil
}

// Encodings as the clients build them: every field present (status-go's structs have no
// optional fields; a decoder of its own struct refuses a missing Batch).
type (
	encPayload struct {
		Lower, Upper uint32
		Bloom        []byte
		Limit        uint32
		Cursor       []byte
		Batch        bool
	}
	encPayloadTopics struct {
		Lower, Upper uint32
		Bloom        []byte
		Topics       [][]byte
		Limit        uint32
		Cursor       []byte
		Batch        bool
	}
	encMessagesRequest struct {
		ID              []byte
		From, To, Limit uint32
		Cursor, Bloom   []byte
	}
	encWakuMessagesRequest struct {
		ID              []byte
		From, To, Limit uint32
		Cursor, Bloom   []byte
		Topics          [][]byte
	}
)

// EncodePayload is the late-2019 RLP MessagesRequestPayload (FormPayload) a client puts
// in its request envelope: what servers before status-go bc2d0184 decode.
func EncodePayload(lower, upper uint32, bloom whisper.Bloom, limit uint32, cursor []byte, batch bool) ([]byte, error) {
	return rlp.EncodeToBytes(&encPayload{Lower: lower, Upper: upper, Bloom: bloom[:], Limit: limit,
		Cursor: append([]byte{}, cursor...), Batch: batch})
}

// EncodePayloadTopics is the RLP MessagesRequestPayload with Topics (FormTopics), as
// status-go's services/ext.MakeMessagesRequestPayload builds it: what status-go servers
// from bc2d0184 (2020-01-21) through v0.70.1 decode, and what a late-2019 server cannot.
func EncodePayloadTopics(lower, upper uint32, bloom whisper.Bloom, topics []whisper.Topic, limit uint32, cursor []byte, batch bool) ([]byte, error) {
	ts := make([][]byte, len(topics))
	for i := range topics {
		ts[i] = topics[i][:]
	}
	return rlp.EncodeToBytes(&encPayloadTopics{Lower: lower, Upper: upper, Bloom: bloom[:], Topics: ts, Limit: limit,
		Cursor: append([]byte{}, cursor...), Batch: batch})
}

// EncodeMessagesRequest is the body of a struct-form request (FormStruct) as status-go's
// Messenger sends it over Whisper: six fields, no topics (Whisper's struct has none).
func EncodeMessagesRequest(id [32]byte, from, to, limit uint32, cursor []byte, bloom whisper.Bloom) ([]byte, error) {
	return rlp.EncodeToBytes(&encMessagesRequest{ID: id[:], From: from, To: to, Limit: limit,
		Cursor: append([]byte{}, cursor...), Bloom: bloom[:]})
}

// EncodeWakuMessagesRequest is the body of a struct-form request to a Waku mailserver:
// status-go v0.70.1's waku/common.MessagesRequest has a seventh field, Topics, which its
// RLP decoder requires (six fields fail to decode, and the request goes unanswered); a
// non-empty list selects exactly.
func EncodeWakuMessagesRequest(id [32]byte, from, to, limit uint32, cursor []byte, bloom whisper.Bloom, topics []whisper.Topic) ([]byte, error) {
	ts := make([][]byte, len(topics))
	for i := range topics {
		ts[i] = topics[i][:]
	}
	return rlp.EncodeToBytes(&encWakuMessagesRequest{ID: id[:], From: from, To: to, Limit: limit,
		Cursor: append([]byte{}, cursor...), Bloom: bloom[:], Topics: ts})
}

// Completion is a code-125 request-complete packet.
type Completion struct {
	RequestID    [32]byte
	LastEnvelope [32]byte
	Cursor       []byte // empty: no more results
	Error        string // set for the ERROR= form
}

// Encode returns the packet body: one RLP byte string (§4.4).
func (c *Completion) Encode() []byte {
	var raw []byte
	if c.Error != "" {
		raw = append(append([]byte("ERROR="), c.RequestID[:]...), c.Error...)
	} else {
		raw = append(append(append(raw, c.RequestID[:]...), c.LastEnvelope[:]...), c.Cursor...)
	}
	b, _ := rlp.EncodeToBytes(raw) // a byte string always encodes
	return b
}

// DecodeCompletion parses a code-125 body: 32, 64 or 100 bytes, or the ERROR= form.
func DecodeCompletion(body []byte) (*Completion, error) {
	var raw []byte
	if err := rlp.DecodeBytes(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: completion: %w", ErrBadRequest, err)
	}
	c := &Completion{}
	if len(raw) >= 6+32 && string(raw[:6]) == "ERROR=" {
		copy(c.RequestID[:], raw[6:38])
		c.Error = string(raw[38:])
		if c.Error == "" {
			c.Error = "unspecified error"
		}
		return c, nil
	}
	switch len(raw) {
	case 32, 64, 64 + CursorLength:
	default:
		return nil, fmt.Errorf("%w: completion of %d bytes", ErrBadRequest, len(raw))
	}
	copy(c.RequestID[:], raw[:32])
	if len(raw) >= 64 {
		copy(c.LastEnvelope[:], raw[32:64])
	}
	if len(raw) > 64 {
		c.Cursor = append([]byte(nil), raw[64:]...)
	}
	return c, nil
}

// peekRequest finds the ID a refused request is answered with, without opening it: the
// envelope's hash, the struct form's ID, or the body's Keccak-256.
func peekRequest(body []byte) *Request {
	if env, err := whisper.DecodeEnvelope(body); err == nil {
		return &Request{ID: env.Hash()}
	}
	var mr messagesRequest
	if err := rlp.DecodeBytes(body, &mr); err == nil && len(mr.ID) == 32 {
		return &Request{ID: [32]byte(mr.ID), Form: FormStruct}
	}
	return &Request{ID: crypto.Keccak256Hash(body)}
}
