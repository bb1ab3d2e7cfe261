package main

// "statusgo-ref vectors": the secure transport's key schedule computed by status-go
// v0.70.1's own code on fixed keys, printed as JSON. core/ratchet's transcript test
// compares its output against these values (committed as
// core/ratchet/testdata/statusgo-vectors.json); regenerate with
//
//	cd test/statusgo && GOWORK=off go run . vectors > ../../core/ratchet/testdata/statusgo-vectors.json
//
// Everything random in status-go is fixed here by wrapping, never by changing its code:
// the ratchet key pairs come from a scripted GenerateDH around EthereumCrypto (which
// then does every DH, KDF and encryption), the X3DH ephemeral and signed prekey are
// fixed keys given to status-go's PerformPassiveX3DH/PerformDH, and message keys are
// read as EthereumCrypto receives them. Sessions are doubleratchet v3.0.0 sessions with
// the options status-go's encryptor sets.

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/golang/protobuf/proto"
	dr "github.com/status-im/doubleratchet"

	"github.com/status-im/status-go/eth-node/crypto"
	"github.com/status-im/status-go/eth-node/crypto/ecies"
	"github.com/status-im/status-go/protocol/encryption"
	"github.com/status-im/status-go/protocol/transport"
)

// keyFrom is keccak256(name) as a private key: the fixed keys of the vectors.
func keyFrom(name string) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(name)))
	if err != nil {
		panic(err)
	}
	return k
}

// scripted is status-go's EthereumCrypto with GenerateDH drawing from a fixed list and
// the message keys recorded.
type scripted struct {
	crypto.EthereumCrypto
	keys   []string // names of the next ratchet keys
	lastMK []byte
}

func (s *scripted) GenerateDH() (dr.DHPair, error) {
	if len(s.keys) == 0 {
		return nil, fmt.Errorf("script ran out of ratchet keys")
	}
	k := keyFrom(s.keys[0])
	s.keys = s.keys[1:]
	return crypto.DHPair{PrvKey: crypto.FromECDSA(k), PubKey: crypto.CompressPubkey(&k.PublicKey)}, nil
}

func (s *scripted) Encrypt(mk dr.Key, pt, ad []byte) ([]byte, error) {
	s.lastMK = append([]byte(nil), mk...)
	return s.EthereumCrypto.Encrypt(mk, pt, ad)
}

func (s *scripted) Decrypt(mk dr.Key, ct, ad []byte) ([]byte, error) {
	s.lastMK = append([]byte(nil), mk...)
	return s.EthereumCrypto.Decrypt(mk, ct, ad)
}

// memSessions is a doubleratchet SessionStorage keeping the last saved state.
type memSessions struct{ state *dr.State }

func (m *memSessions) Save(_ []byte, s *dr.State) error { c := *s; m.state = &c; return nil }
func (m *memSessions) Load([]byte) (*dr.State, error)   { return m.state, nil }

type vecState struct {
	Root      string `json:"root_key"`
	SendKey   string `json:"send_chain_key"`
	SendN     uint32 `json:"send_n"`
	RecvKey   string `json:"recv_chain_key"`
	RecvN     uint32 `json:"recv_n"`
	PN        uint32 `json:"pn"`
	DHs       string `json:"dhs_public"`
	DHr       string `json:"dhr"`
	KeysCount uint   `json:"keys_count"`
}

func stateOf(s *dr.State) vecState {
	return vecState{
		Root: hex.EncodeToString(s.RootCh.CK), SendKey: hex.EncodeToString(s.SendCh.CK), SendN: s.SendCh.N,
		RecvKey: hex.EncodeToString(s.RecvCh.CK), RecvN: s.RecvCh.N, PN: s.PN,
		DHs: hex.EncodeToString(s.DHs.PublicKey()), DHr: hex.EncodeToString(s.DHr), KeysCount: s.KeysCount,
	}
}

type vecStep struct {
	Actor      string   `json:"actor"` // "alice" or "bob"
	Op         string   `json:"op"`    // "encrypt" or "decrypt"
	Message    int      `json:"message"`
	Text       string   `json:"text"`
	HeaderDH   string   `json:"header_dh"`
	HeaderN    uint32   `json:"header_n"`
	HeaderPN   uint32   `json:"header_pn"`
	Ciphertext string   `json:"ciphertext"`
	MessageKey string   `json:"message_key"`
	State      vecState `json:"state"`
}

type party struct {
	name    string
	crypto  *scripted
	store   *memSessions
	keys    *dr.KeysStorageInMemory
	session dr.Session
}

func runVectors(args []string, out io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("vectors takes no arguments")
	}
	ikA, ikB := keyFrom("alice"), keyFrom("bob")
	spkB, ekA := keyFrom("bob signed prekey"), keyFrom("alice ephemeral")
	v := map[string]any{
		"source":            "status-go v0.70.1 protocol/encryption and eth-node/crypto, doubleratchet v3.0.0+incompatible",
		"alice_identity":    hex.EncodeToString(crypto.FromECDSA(ikA)),
		"bob_identity":      hex.EncodeToString(crypto.FromECDSA(ikB)),
		"bob_signed_prekey": hex.EncodeToString(crypto.FromECDSA(spkB)),
		"alice_ephemeral":   hex.EncodeToString(crypto.FromECDSA(ekA)),
	}

	// X3DH: Bob's side with status-go's exported function; Alice's side is the same value.
	sk, err := encryption.PerformPassiveX3DH(&ikA.PublicKey, spkB, &ekA.PublicKey, ikB)
	if err != nil {
		return err
	}
	v["x3dh_shared_key"] = hex.EncodeToString(sk)

	// The Double Ratchet transcript.
	alice := &party{name: "alice", crypto: &scripted{keys: []string{"alice ratchet 0", "alice ratchet 1", "alice ratchet 2", "alice ratchet 3"}},
		store: &memSessions{}, keys: &dr.KeysStorageInMemory{}}
	bob := &party{name: "bob", crypto: &scripted{keys: []string{"bob ratchet 0", "bob ratchet 1", "bob ratchet 2", "bob ratchet 3"}},
		store: &memSessions{}, keys: &dr.KeysStorageInMemory{}}
	id := []byte("session")
	alice.session, err = dr.NewWithRemoteKey(id, sk, crypto.CompressPubkey(&spkB.PublicKey), alice.store,
		dr.WithKeysStorage(alice.keys), dr.WithMaxSkip(1000), dr.WithMaxKeep(3000), dr.WithMaxMessageKeysPerSession(2000),
		dr.WithCrypto(alice.crypto))
	if err != nil {
		return err
	}
	bob.session, err = dr.New(id, sk, crypto.DHPair{PrvKey: crypto.FromECDSA(spkB), PubKey: crypto.CompressPubkey(&spkB.PublicKey)}, bob.store,
		dr.WithKeysStorage(bob.keys), dr.WithMaxSkip(1000), dr.WithMaxKeep(3000), dr.WithMaxMessageKeysPerSession(2000),
		dr.WithCrypto(bob.crypto))
	if err != nil {
		return err
	}
	v["alice_initial"] = stateOf(alice.store.state)
	v["bob_initial"] = stateOf(bob.store.state)

	var steps []vecStep
	var sent []dr.Message
	encrypt := func(p *party, text string) error {
		m, err := p.session.RatchetEncrypt([]byte(text), nil)
		if err != nil {
			return err
		}
		sent = append(sent, m)
		steps = append(steps, vecStep{Actor: p.name, Op: "encrypt", Message: len(sent) - 1, Text: text,
			HeaderDH: hex.EncodeToString(m.Header.DH), HeaderN: m.Header.N, HeaderPN: m.Header.PN,
			Ciphertext: hex.EncodeToString(m.Ciphertext), MessageKey: hex.EncodeToString(p.crypto.lastMK),
			State: stateOf(p.store.state)})
		return nil
	}
	decrypt := func(p *party, i int) error {
		pt, err := p.session.RatchetDecrypt(sent[i], nil)
		if err != nil {
			return fmt.Errorf("%s decrypt message %d: %w", p.name, i, err)
		}
		m := sent[i]
		steps = append(steps, vecStep{Actor: p.name, Op: "decrypt", Message: i, Text: string(pt),
			HeaderDH: hex.EncodeToString(m.Header.DH), HeaderN: m.Header.N, HeaderPN: m.Header.PN,
			Ciphertext: hex.EncodeToString(m.Ciphertext), MessageKey: hex.EncodeToString(p.crypto.lastMK),
			State: stateOf(p.store.state)})
		return nil
	}
	// a0, a1 (delivered out of order), b0, b1, a2, b2.
	for _, f := range []func() error{
		func() error { return encrypt(alice, "a0") },
		func() error { return encrypt(alice, "a1") },
		func() error { return decrypt(bob, 1) },
		func() error { return decrypt(bob, 0) },
		func() error { return encrypt(bob, "b0") },
		func() error { return encrypt(bob, "b1") },
		func() error { return decrypt(alice, 2) },
		func() error { return decrypt(alice, 3) },
		func() error { return encrypt(alice, "a2") },
		func() error { return decrypt(bob, 4) },
		func() error { return encrypt(bob, "b2") },
		func() error { return decrypt(alice, 5) },
	} {
		if err := f(); err != nil {
			return err
		}
	}
	v["transcript"] = steps

	// PROTOCOL.md §13's KDF inputs through EthereumCrypto, and an encryption with them.
	var ec crypto.EthereumCrypto
	rk, ck, hk := ec.KdfRK(make([]byte, 32), bytesOf(1, 32))
	nck, mk := ec.KdfCK(make([]byte, 32))
	ct, err := ec.Encrypt(mk, []byte("hello"), []byte("ad"))
	if err != nil {
		return err
	}
	v["kdf"] = map[string]string{
		"rk_root": hex.EncodeToString(rk), "rk_chain": hex.EncodeToString(ck), "rk_header": hex.EncodeToString(hk),
		"ck_chain": hex.EncodeToString(nck), "ck_message": hex.EncodeToString(mk),
		"encrypt_hello_ad": hex.EncodeToString(ct),
	}

	// DH mode: the key status-go derives for an ephemeral key and Bob's identity, and a
	// payload it sealed (its nonce is random: the reader must open it).
	dhKey, err := encryption.PerformDH(ecies.ImportECDSA(ekA), ecies.ImportECDSAPublic(&ikB.PublicKey))
	if err != nil {
		return err
	}
	sealed, err := crypto.EncryptSymmetric(dhKey, []byte("dh payload"))
	if err != nil {
		return err
	}
	v["dh"] = map[string]string{"key": hex.EncodeToString(dhKey), "ephemeral": hex.EncodeToString(crypto.CompressPubkey(&ekA.PublicKey)),
		"sealed": hex.EncodeToString(sealed), "plaintext": "dh payload"}

	// Negotiated secret and topics.
	secret, err := encryption.PerformDH(ecies.ImportECDSA(ikA), ecies.ImportECDSAPublic(&ikB.PublicKey))
	if err != nil {
		return err
	}
	v["negotiated"] = map[string]string{
		"secret":            hex.EncodeToString(secret),
		"topic":             hex.EncodeToString(transport.ToTopic(hex.EncodeToString(secret))),
		"partitioned_bob":   transport.PartitionedTopic(&ikB.PublicKey),
		"contact_code_bob":  transport.ContactCodeTopic(&ikB.PublicKey),
		"personal_bob":      transport.PersonalDiscoveryTopic(&ikB.PublicKey),
		"discovery":         transport.DiscoveryTopic(),
		"discovery_topic":   hex.EncodeToString(transport.ToTopic(transport.DiscoveryTopic())),
		"partitioned_topic": hex.EncodeToString(transport.ToTopic(transport.PartitionedTopic(&ikB.PublicKey))),
	}

	// A bundle signed by status-go (SignBundle stamps the current time).
	spkA := keyFrom("alice signed prekey")
	bc := &encryption.BundleContainer{
		Bundle: &encryption.Bundle{
			Identity: crypto.CompressPubkey(&ikA.PublicKey),
			SignedPreKeys: map[string]*encryption.SignedPreKey{
				"alice-installation": {SignedPreKey: crypto.CompressPubkey(&spkA.PublicKey), Version: 1, ProtocolVersion: 1},
				"alice-second":       {SignedPreKey: crypto.CompressPubkey(&keyFrom("alice second prekey").PublicKey), Version: 3, ProtocolVersion: 1},
			},
		},
	}
	if err := encryption.SignBundle(ikA, bc); err != nil {
		return err
	}
	raw, err := proto.Marshal(bc.Bundle)
	if err != nil {
		return err
	}
	v["bundle"] = map[string]any{"encoded": hex.EncodeToString(raw), "timestamp": bc.Bundle.Timestamp,
		"signature": hex.EncodeToString(bc.Bundle.Signature)}

	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
