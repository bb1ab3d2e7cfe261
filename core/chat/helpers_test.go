package chat

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// -update rewrites the golden files under testdata instead of comparing with them.
var update = flag.Bool("update", false, "rewrite golden files in testdata")

// keyFrom returns the private key keccak256(seed) (PROTOCOL.md §13: privA = "alice").
func keyFrom(tb testing.TB, seed string) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(seed)))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func pubHex(p *ecdsa.PublicKey) string {
	if p == nil {
		return ""
	}
	return hex.EncodeToString(crypto.FromECDSAPub(p))
}

// golden compares got with testdata/name, or writes it with -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs from golden\n got: %q\nwant: %q", name, got, want)
	}
}

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// decodedView is the stable JSON form of a Decoded used in golden files.
type decodedView struct {
	Format      string   `json:"format"`
	Tag         string   `json:"tag,omitempty"`
	Wrapped     bool     `json:"wrapped,omitempty"`
	Author      string   `json:"author,omitempty"`
	Clock       uint64   `json:"clock"`
	Timestamp   uint64   `json:"timestamp"`
	Text        string   `json:"text"`
	ResponseTo  string   `json:"response_to,omitempty"`
	ENSName     string   `json:"ens_name,omitempty"`
	ChatID      string   `json:"chat_id"`
	MessageType string   `json:"message_type"`
	ContentType string   `json:"content_type"`
	Sticker     *Sticker `json:"sticker,omitempty"`
}

func viewOf(d *Decoded) []byte {
	m := d.Message
	v := decodedView{
		Format: m.Format.String(), Tag: d.Tag, Wrapped: m.Wrapped, Author: pubHex(d.Author),
		Clock: m.Clock, Timestamp: m.Timestamp, Text: m.Text, ResponseTo: m.ResponseTo, ENSName: m.ENSName,
		ChatID: m.ChatID, MessageType: m.MessageType.String(), ContentType: m.ContentType.String(), Sticker: m.Sticker,
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // test helper on a fixed struct
	}
	return append(b, '\n')
}

// sameMessage compares the content fields (not Format, Wrapped, Signer).
func sameMessage(a, b *Message) bool {
	if (a.Sticker == nil) != (b.Sticker == nil) || a.Sticker != nil && *a.Sticker != *b.Sticker {
		return false
	}
	return a.Clock == b.Clock && a.Timestamp == b.Timestamp && a.Text == b.Text && a.ResponseTo == b.ResponseTo &&
		a.ENSName == b.ENSName && a.ChatID == b.ChatID && a.MessageType == b.MessageType && a.ContentType == b.ContentType
}
