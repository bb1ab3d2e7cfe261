package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/whisper/whisperv6"
)

// request is the union of the fields of every serve operation. Byte fields
// are lowercase hex without a 0x prefix; an empty string means "absent".
type request struct {
	Op string `json:"op"`

	// seal
	Payload  string  `json:"payload"`
	Padding  string  `json:"padding"`
	Topic    string  `json:"topic"`
	TTL      uint32  `json:"ttl"`
	PoW      float64 `json:"pow"`
	WorkTime uint32  `json:"work_time"`
	SymKey   string  `json:"sym_key"` // also open
	DstPub   string  `json:"dst_pub"`
	SrcPriv  string  `json:"src_priv"`

	// open, envelope
	Envelope string `json:"envelope"`
	Priv     string `json:"priv"`

	// derive
	S string `json:"s"`

	// bloom_match
	Filter string `json:"filter"`
	Sample string `json:"sample"`
}

// jsonFloat is a float64 that survives JSON when it is not finite. geth's
// Envelope.PoW divides by TTL, so a decoded envelope with TTL 0 has PoW +Inf,
// which encoding/json refuses; such values are sent as the strings "+Inf",
// "-Inf" and "NaN". Finite values use the encoding/json number format.
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	}
	return json.Marshal(v)
}

type errorReply struct {
	Error string `json:"error"`
}

type sealReply struct {
	Envelope string    `json:"envelope"`
	Hash     string    `json:"hash"`
	PoW      jsonFloat `json:"pow"`
	Expiry   uint32    `json:"expiry"`
	TTL      uint32    `json:"ttl"`
	Nonce    uint64    `json:"nonce"`
}

type openReply struct {
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Payload string    `json:"payload"`
	Padding string    `json:"padding"`
	Signer  string    `json:"signer"`
	PoW     jsonFloat `json:"pow"`
	Hash    string    `json:"hash"`
	Topic   string    `json:"topic"`
	TTL     uint32    `json:"ttl"`
	Sent    uint32    `json:"sent"`
}

// openRefusal is the reply of an open request that geth could not serve.
type openRefusal struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

type deriveReply struct {
	Topic  string `json:"topic"`
	Bloom  string `json:"bloom"`
	SymKey string `json:"sym_key"`
}

type envelopeReply struct {
	Hash   string    `json:"hash"`
	PoW    jsonFloat `json:"pow"`
	Expiry uint32    `json:"expiry"`
	TTL    uint32    `json:"ttl"`
	Topic  string    `json:"topic"`
	Nonce  uint64    `json:"nonce"`
	Bloom  string    `json:"bloom"`
	Size   int       `json:"size"`
}

type bloomMatchReply struct {
	Match bool `json:"match"`
}

// server answers serve-mode requests. It owns one whisper instance, used
// only as geth's key store for "derive"; the instance is never started.
type server struct {
	whisper *whisperv6.Whisper
}

// serve runs the JSON-lines loop until in reaches EOF.
func serve(in io.Reader, out io.Writer) error {
	s := &server{whisper: whisperv6.StandaloneWhisperService(nil)}
	r := bufio.NewReaderSize(in, 1<<20)
	w := bufio.NewWriter(out)
	for {
		line, readErr := r.ReadBytes('\n')
		if readErr != nil && readErr != io.EOF {
			return fmt.Errorf("read request: %w", readErr)
		}
		if readErr == io.EOF && len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		reply, err := json.Marshal(s.handle(line))
		if err != nil {
			reply, _ = json.Marshal(errorReply{Error: fmt.Sprintf("encode reply: %v", err)})
		}
		reply = append(reply, '\n')
		if _, err := w.Write(reply); err != nil {
			return fmt.Errorf("write reply: %w", err)
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write reply: %w", err)
		}
		if readErr == io.EOF {
			return nil
		}
	}
}

// handle answers one request line; it never panics.
func (s *server) handle(line []byte) (reply any) {
	var op string
	defer func() {
		if p := recover(); p != nil {
			msg := fmt.Sprintf("panic in geth: %v", p)
			if op == "open" {
				reply = openRefusal{OK: false, Error: msg}
			} else {
				reply = errorReply{Error: msg}
			}
		}
	}()
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return errorReply{Error: "empty request"}
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return errorReply{Error: fmt.Sprintf("bad request: %v", err)}
	}
	op = req.Op
	var err error
	switch req.Op {
	case "seal":
		reply, err = s.seal(&req)
	case "open":
		reply = s.open(&req)
	case "derive":
		reply, err = s.derive(&req)
	case "envelope":
		reply, err = s.envelope(&req)
	case "bloom_match":
		reply, err = s.bloomMatch(&req)
	case "":
		err = errors.New("missing op")
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		return errorReply{Error: err.Error()}
	}
	return reply
}

// seal is geth's NewSentMessage followed by Wrap: pad, sign if src_priv,
// ECIES if dst_pub else AES-GCM with sym_key, envelope, Seal.
func (s *server) seal(req *request) (any, error) {
	var (
		p   whisperv6.MessageParams
		err error
	)
	if p.Payload, err = decodeHex("payload", req.Payload); err != nil {
		return nil, err
	}
	if p.Padding, err = decodeHex("padding", req.Padding); err != nil {
		return nil, err
	}
	if p.Topic, err = decodeTopic(req.Topic); err != nil {
		return nil, err
	}
	if req.SymKey != "" {
		if p.KeySym, err = decodeHex("sym_key", req.SymKey); err != nil {
			return nil, err
		}
	}
	if req.DstPub != "" {
		raw, err := decodeHex("dst_pub", req.DstPub)
		if err != nil {
			return nil, err
		}
		if p.Dst, err = crypto.UnmarshalPubkey(raw); err != nil {
			return nil, fmt.Errorf("dst_pub: %v", err)
		}
	}
	if req.SrcPriv != "" {
		if p.Src, err = decodePriv("src_priv", req.SrcPriv); err != nil {
			return nil, err
		}
	}
	p.TTL = req.TTL
	p.PoW = req.PoW
	p.WorkTime = req.WorkTime

	msg, err := whisperv6.NewSentMessage(&p)
	if err != nil {
		return nil, fmt.Errorf("new sent message: %v", err)
	}
	env, err := msg.Wrap(&p)
	if err != nil {
		return nil, fmt.Errorf("wrap: %v", err)
	}
	raw, err := rlp.EncodeToBytes(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %v", err)
	}
	return sealReply{
		Envelope: hex.EncodeToString(raw),
		Hash:     hex.EncodeToString(env.Hash().Bytes()),
		PoW:      jsonFloat(env.PoW()),
		Expiry:   env.Expiry,
		TTL:      env.TTL,
		Nonce:    env.Nonce,
	}, nil
}

// open decodes an envelope from its RLP bytes and opens it with one key.
func (s *server) open(req *request) any {
	refuse := func(format string, args ...any) any {
		return openRefusal{OK: false, Error: fmt.Sprintf(format, args...)}
	}
	env, err := decodeEnvelope(req.Envelope)
	if err != nil {
		return refuse("%v", err)
	}
	var f whisperv6.Filter
	switch {
	case req.SymKey != "" && req.Priv != "":
		return refuse("give sym_key or priv, not both")
	case req.SymKey != "":
		if f.KeySym, err = decodeHex("sym_key", req.SymKey); err != nil {
			return refuse("%v", err)
		}
		// As geth's Filters.Install does for symmetric filters.
		f.SymKeyHash = crypto.Keccak256Hash(f.KeySym)
	case req.Priv != "":
		if f.KeyAsym, err = decodePriv("priv", req.Priv); err != nil {
			return refuse("%v", err)
		}
	default:
		return refuse("missing sym_key or priv")
	}
	msg := env.Open(&f)
	if msg == nil {
		return refuse("open failed")
	}
	signer := ""
	if msg.Src != nil {
		signer = hex.EncodeToString(crypto.FromECDSAPub(msg.Src))
	}
	return openReply{
		OK:      true,
		Payload: hex.EncodeToString(msg.Payload),
		Padding: hex.EncodeToString(msg.Padding),
		Signer:  signer,
		PoW:     jsonFloat(msg.PoW),
		Hash:    hex.EncodeToString(msg.EnvelopeHash.Bytes()),
		Topic:   hex.EncodeToString(msg.Topic[:]),
		TTL:     msg.TTL,
		Sent:    msg.Sent,
	}
}

// derive returns the topic, bloom and password key for a string, the way
// Status clients derive them for public chats.
func (s *server) derive(req *request) (any, error) {
	topic := whisperv6.BytesToTopic(crypto.Keccak256([]byte(req.S)))
	id, err := s.whisper.AddSymKeyFromPassword(req.S)
	if err != nil {
		return nil, fmt.Errorf("add sym key from password: %v", err)
	}
	defer s.whisper.DeleteSymKey(id)
	key, err := s.whisper.GetSymKey(id)
	if err != nil {
		return nil, fmt.Errorf("get sym key: %v", err)
	}
	return deriveReply{
		Topic:  hex.EncodeToString(topic[:]),
		Bloom:  hex.EncodeToString(whisperv6.TopicToBloom(topic)),
		SymKey: hex.EncodeToString(key),
	}, nil
}

// envelope decodes an envelope and reports its public fields.
func (s *server) envelope(req *request) (any, error) {
	env, err := decodeEnvelope(req.Envelope)
	if err != nil {
		return nil, err
	}
	return envelopeReply{
		Hash:   hex.EncodeToString(env.Hash().Bytes()),
		PoW:    jsonFloat(env.PoW()),
		Expiry: env.Expiry,
		TTL:    env.TTL,
		Topic:  hex.EncodeToString(env.Topic[:]),
		Nonce:  env.Nonce,
		Bloom:  hex.EncodeToString(env.Bloom()),
		Size:   whisperv6.EnvelopeHeaderLength + len(env.Data),
	}, nil
}

// bloomMatch is geth's BloomFilterMatch on two 64-byte blooms.
func (s *server) bloomMatch(req *request) (any, error) {
	filter, err := decodeFixed("filter", req.Filter, whisperv6.BloomFilterSize)
	if err != nil {
		return nil, err
	}
	sample, err := decodeFixed("sample", req.Sample, whisperv6.BloomFilterSize)
	if err != nil {
		return nil, err
	}
	return bloomMatchReply{Match: whisperv6.BloomFilterMatch(filter, sample)}, nil
}

// decodeEnvelope decodes RLP bytes the way a receiving geth node does, so
// the envelope hash is the keccak256 of exactly these bytes.
func decodeEnvelope(h string) (*whisperv6.Envelope, error) {
	raw, err := decodeHex("envelope", h)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, errors.New("envelope: empty")
	}
	env := new(whisperv6.Envelope)
	if err := rlp.DecodeBytes(raw, env); err != nil {
		return nil, fmt.Errorf("decode envelope: %v", err)
	}
	return env, nil
}

func decodeHex(field, h string) ([]byte, error) {
	if strings.HasPrefix(h, "0x") || strings.HasPrefix(h, "0X") {
		return nil, fmt.Errorf("%s: hex must not have a 0x prefix", field)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	return b, nil
}

func decodeFixed(field, h string, n int) ([]byte, error) {
	b, err := decodeHex(field, h)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s: want %d bytes, got %d", field, n, len(b))
	}
	return b, nil
}

func decodeTopic(h string) (whisperv6.TopicType, error) {
	var t whisperv6.TopicType
	b, err := decodeFixed("topic", h, whisperv6.TopicLength)
	if err != nil {
		return t, err
	}
	copy(t[:], b)
	return t, nil
}

func decodePriv(field, h string) (*ecdsa.PrivateKey, error) {
	b, err := decodeHex(field, h)
	if err != nil {
		return nil, err
	}
	k, err := crypto.ToECDSA(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	return k, nil
}
