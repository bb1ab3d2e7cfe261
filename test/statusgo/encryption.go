package main

// "statusgo-ref encryption": status-go v0.70.1's secure transport alone
// (protocol/encryption.Protocol, each party on its own sqlcipher database opened with
// protocol/sqlite, as status-go's own encryption tests set it up), driven over JSON
// lines without a node or a Messenger. core/ratchet's interop tests hand its
// ProtocolMessages to ours and ours to it, both directions, byte for byte.

import (
	"bufio"
	"crypto/ecdsa"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/golang/protobuf/proto"
	"go.uber.org/zap"

	"github.com/status-im/status-go/eth-node/crypto"
	"github.com/status-im/status-go/protocol/encryption"
	"github.com/status-im/status-go/protocol/encryption/multidevice"
	"github.com/status-im/status-go/protocol/sqlite"
)

// encParty is one identity and installation with its own database.
type encParty struct {
	key *ecdsa.PrivateKey
	db  *sql.DB
	p   *encryption.Protocol
}

type encryptionMode struct {
	mu      sync.Mutex
	parties map[string]*encParty
}

// encOps is the request table of "statusgo-ref encryption" (README.md documents it).
var encOps = map[string]func(e *encryptionMode, line []byte) (map[string]any, error){
	"new":                 encNew,
	"bundle":              encBundle,
	"process_bundle":      encProcessBundle,
	"build_direct":        encBuildDirect,
	"build_dh":            encBuildDH,
	"build_public":        encBuildPublic,
	"handle":              encHandle,
	"confirm":             encConfirm,
	"enable_installation": encEnableInstallation,
	"close":               encClose,
}

func runEncryption(args []string, in io.Reader, out io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("encryption takes no arguments")
	}
	e := &encryptionMode{parties: map[string]*encParty{}}
	enc := json.NewEncoder(out)
	if err := enc.Encode(map[string]any{"type": "ready"}); err != nil {
		return err
	}
	r := bufio.NewReaderSize(in, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if err := enc.Encode(e.handle(line)); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	for _, p := range e.parties {
		p.db.Close()
	}
	return nil
}

func (e *encryptionMode) handle(line []byte) (reply map[string]any) {
	var head struct {
		Op string          `json:"op"`
		ID json.RawMessage `json:"id"`
	}
	defer func() {
		if p := recover(); p != nil {
			reply = map[string]any{"error": fmt.Sprintf("panic in status-go: %v", p)}
		}
		reply["type"] = "reply"
		reply["id"] = head.ID
	}()
	if err := json.Unmarshal(line, &head); err != nil {
		return map[string]any{"error": fmt.Sprintf("bad request: %v", err)}
	}
	o, ok := encOps[head.Op]
	if !ok {
		return map[string]any{"error": fmt.Sprintf("unknown op %q", head.Op)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	reply, err := o(e, line)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	if reply == nil {
		reply = map[string]any{"ok": true}
	}
	return reply
}

// encReq holds every field an encryption op may take; bytes are hex.
type encReq struct {
	Name           string `json:"name"`
	Key            string `json:"key"`
	Installation   string `json:"installation"`
	DB             string `json:"db"`
	To             string `json:"to"`
	From           string `json:"from"`
	Payload        string `json:"payload"`
	Message        string `json:"message"`
	MessageID      string `json:"message_id"`
	Bundle         string `json:"bundle"`
	InstallationID string `json:"installation_id"`
}

func (e *encryptionMode) req(line []byte) (encReq, *encParty, error) {
	var r encReq
	if err := params(line, &r); err != nil {
		return r, nil, err
	}
	p := e.parties[r.Name]
	if p == nil {
		return r, nil, fmt.Errorf("no party %q", r.Name)
	}
	return r, p, nil
}

func pubFromHex(s string) (*ecdsa.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("public key: %v", err)
	}
	if len(b) == 33 {
		return crypto.DecompressPubkey(b)
	}
	return crypto.UnmarshalPubkey(b)
}

func hexField(name, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return b, nil
}

func ids(is []*multidevice.Installation) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, i.ID)
	}
	sort.Strings(out)
	return out
}

func encNew(e *encryptionMode, line []byte) (map[string]any, error) {
	var r encReq
	if err := params(line, &r); err != nil {
		return nil, err
	}
	if r.Name == "" || r.Installation == "" || r.DB == "" {
		return nil, fmt.Errorf("new needs name, installation and db")
	}
	if old := e.parties[r.Name]; old != nil {
		old.db.Close()
	}
	kb, err := hexField("key", r.Key)
	if err != nil {
		return nil, err
	}
	key, err := crypto.ToECDSA(kb)
	if err != nil {
		return nil, fmt.Errorf("key: %v", err)
	}
	db, err := sqlite.Open(r.DB, "statusgo-ref")
	if err != nil {
		return nil, fmt.Errorf("open %s: %v", r.DB, err)
	}
	e.parties[r.Name] = &encParty{key: key, db: db, p: encryption.New(db, r.Installation, zap.NewNop())}
	return map[string]any{"compressed": hex.EncodeToString(crypto.CompressPubkey(&key.PublicKey))}, nil
}

func encBundle(e *encryptionMode, line []byte) (map[string]any, error) {
	_, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	b, err := p.p.GetBundle(p.key)
	if err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(b)
	if err != nil {
		return nil, err
	}
	return map[string]any{"bundle": hex.EncodeToString(raw)}, nil
}

func encProcessBundle(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	raw, err := hexField("bundle", r.Bundle)
	if err != nil {
		return nil, err
	}
	var b encryption.Bundle
	if err := proto.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("decode bundle: %v", err)
	}
	is, err := p.p.ProcessPublicBundle(p.key, &b)
	if err != nil {
		return nil, err
	}
	return map[string]any{"installations": ids(is)}, nil
}

func specReply(spec *encryption.ProtocolMessageSpec) (map[string]any, error) {
	raw, err := proto.Marshal(spec.Message)
	if err != nil {
		return nil, err
	}
	reply := map[string]any{
		"message":       hex.EncodeToString(raw),
		"agreed":        spec.AgreedSecret,
		"installations": ids(spec.Installations),
	}
	if spec.SharedSecret != nil {
		reply["shared_secret"] = hex.EncodeToString(spec.SharedSecret.Key)
	}
	return reply, nil
}

func encBuildDirect(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	to, err := pubFromHex(r.To)
	if err != nil {
		return nil, err
	}
	payload, err := hexField("payload", r.Payload)
	if err != nil {
		return nil, err
	}
	spec, err := p.p.BuildDirectMessage(p.key, to, payload)
	if err != nil {
		return nil, err
	}
	return specReply(spec)
}

func encBuildDH(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	to, err := pubFromHex(r.To)
	if err != nil {
		return nil, err
	}
	payload, err := hexField("payload", r.Payload)
	if err != nil {
		return nil, err
	}
	spec, err := p.p.BuildDHMessage(p.key, to, payload)
	if err != nil {
		return nil, err
	}
	return specReply(spec)
}

func encBuildPublic(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	payload, err := hexField("payload", r.Payload)
	if err != nil {
		return nil, err
	}
	spec, err := p.p.BuildPublicMessage(p.key, payload)
	if err != nil {
		return nil, err
	}
	return specReply(spec)
}

func encHandle(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	from, err := pubFromHex(r.From)
	if err != nil {
		return nil, err
	}
	raw, err := hexField("message", r.Message)
	if err != nil {
		return nil, err
	}
	id, err := hexField("message_id", r.MessageID)
	if err != nil {
		return nil, err
	}
	var pm encryption.ProtocolMessage
	if err := proto.Unmarshal(raw, &pm); err != nil {
		return nil, fmt.Errorf("decode protocol message: %v", err)
	}
	resp, err := p.p.HandleMessage(p.key, from, &pm, id)
	if err != nil {
		return nil, err
	}
	secrets := []string{}
	for _, s := range resp.SharedSecrets {
		secrets = append(secrets, hex.EncodeToString(s.Key))
	}
	return map[string]any{
		"payload":       hex.EncodeToString(resp.DecryptedMessage),
		"installations": ids(resp.Installations),
		"secrets":       secrets,
	}, nil
}

func encConfirm(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	id, err := hexField("message_id", r.MessageID)
	if err != nil {
		return nil, err
	}
	return nil, p.p.ConfirmMessageProcessed(id)
}

func encEnableInstallation(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	return nil, p.p.EnableInstallation(&p.key.PublicKey, r.InstallationID)
}

func encClose(e *encryptionMode, line []byte) (map[string]any, error) {
	r, p, err := e.req(line)
	if err != nil {
		return nil, err
	}
	delete(e.parties, r.Name)
	return nil, p.db.Close()
}
