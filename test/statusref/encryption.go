package statusref

import (
	"bufio"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// Encryption is a statusgo-ref process in "encryption" mode: status-go v0.70.1's
// protocol/encryption.Protocol for any number of named parties, each on its own
// database, with no node and no Messenger. Tests hand ProtocolMessages between it and
// core/ratchet. Calls are synchronous and serialised.
type Encryption struct {
	tb     testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte // reply lines; closed when stdout ends
	stderr *limitedBuffer
	dir    string

	mu     sync.Mutex
	nextID int64
}

// StartEncryption builds (see Build) and starts statusgo-ref in encryption mode; tb's
// cleanup ends it (EOF on stdin closes the databases).
func StartEncryption(tb testing.TB) *Encryption {
	tb.Helper()
	bin := Build(tb)
	e := &Encryption{tb: tb, cmd: exec.Command(bin, "encryption"), lines: make(chan []byte, 16),
		stderr: &limitedBuffer{limit: stderrLimit}, dir: tb.TempDir()}
	e.cmd.Stderr = e.stderr
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		tb.Fatalf("start statusgo-ref encryption: %v", err)
	}
	readerDone := make(chan struct{})
	go func() { // owned by e: ends with stdout, which Cleanup closes by ending the process
		defer close(readerDone)
		defer close(e.lines)
		r := bufio.NewReaderSize(stdout, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				e.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		e.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- e.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("statusgo-ref encryption exited: %v; stderr: %s", err, e.stderr)
			}
		case <-time.After(exitTimeout):
			e.cmd.Process.Kill()
			<-done
			tb.Errorf("statusgo-ref encryption did not exit within %v", exitTimeout)
		}
		for range e.lines { // drain so the reader ends
		}
		<-readerDone
	})
	select {
	case line, ok := <-e.lines:
		var head struct{ Type string }
		if !ok || json.Unmarshal(line, &head) != nil || head.Type != "ready" {
			tb.Fatalf("statusgo-ref encryption: no ready line (%q); stderr: %s", line, e.stderr)
		}
	case <-time.After(readyTimeout):
		tb.Fatalf("statusgo-ref encryption: not ready within %v", readyTimeout)
	}
	return e
}

// call sends one request and decodes the reply into out; a reply with "error" returns
// an error wrapping ErrRefused.
func (e *Encryption) call(op string, req map[string]any, out any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextID++
	req["op"], req["id"] = op, e.nextID
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := e.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: write: %w; stderr: %s", op, err, e.stderr)
	}
	select {
	case line, ok := <-e.lines:
		if !ok {
			return fmt.Errorf("%s: statusgo-ref exited; stderr: %s", op, e.stderr)
		}
		var head struct {
			ID    int64  `json:"id"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(line, &head); err != nil || head.ID != e.nextID {
			return fmt.Errorf("%s: bad reply %q (%v)", op, line, err)
		}
		if head.Error != "" {
			return fmt.Errorf("%s: %w: %s", op, ErrRefused, head.Error)
		}
		if out != nil {
			return json.Unmarshal(line, out)
		}
		return nil
	case <-time.After(callTimeout):
		return fmt.Errorf("%s: no reply within %v", op, callTimeout)
	}
}

func (e *Encryption) must(op string, req map[string]any, out any) {
	e.tb.Helper()
	if err := e.call(op, req, out); err != nil {
		e.tb.Fatal(err)
	}
}

// NewParty creates (or, with the same name, reopens from its database) a status-go
// encryption.Protocol for key and installation.
func (e *Encryption) NewParty(name string, key *ecdsa.PrivateKey, installation string) {
	e.tb.Helper()
	e.must("new", map[string]any{"name": name, "key": hex.EncodeToString(crypto.FromECDSA(key)),
		"installation": installation, "db": filepath.Join(e.dir, name+".sql")}, nil)
}

// Bundle returns the party's current bundle, encoded (GetBundle).
func (e *Encryption) Bundle(name string) []byte {
	e.tb.Helper()
	var r struct{ Bundle string }
	e.must("bundle", map[string]any{"name": name}, &r)
	return unhexTB(e.tb, r.Bundle)
}

// ProcessBundle hands an encoded bundle to ProcessPublicBundle and returns the
// installations it added.
func (e *Encryption) ProcessBundle(name string, bundle []byte) ([]string, error) {
	var r struct{ Installations []string }
	err := e.call("process_bundle", map[string]any{"name": name, "bundle": hex.EncodeToString(bundle)}, &r)
	return r.Installations, err
}

// Spec is what status-go built: the encoded ProtocolMessage and its ProtocolMessageSpec.
type Spec struct {
	Message       []byte
	Agreed        bool
	SharedSecret  []byte
	Installations []string
}

func (e *Encryption) build(op string, req map[string]any) Spec {
	e.tb.Helper()
	var r struct {
		Message       string
		Agreed        bool
		SharedSecret  string `json:"shared_secret"`
		Installations []string
	}
	e.must(op, req, &r)
	return Spec{Message: unhexTB(e.tb, r.Message), Agreed: r.Agreed, SharedSecret: unhexTB(e.tb, r.SharedSecret), Installations: r.Installations}
}

// BuildDirect is BuildDirectMessage from the party to to.
func (e *Encryption) BuildDirect(name string, to *ecdsa.PublicKey, payload []byte) Spec {
	e.tb.Helper()
	return e.build("build_direct", map[string]any{"name": name, "to": hex.EncodeToString(crypto.FromECDSAPub(to)), "payload": hex.EncodeToString(payload)})
}

// BuildDH is BuildDHMessage from the party to to.
func (e *Encryption) BuildDH(name string, to *ecdsa.PublicKey, payload []byte) Spec {
	e.tb.Helper()
	return e.build("build_dh", map[string]any{"name": name, "to": hex.EncodeToString(crypto.FromECDSAPub(to)), "payload": hex.EncodeToString(payload)})
}

// BuildPublic is BuildPublicMessage (a public message wrapped with the party's bundle).
func (e *Encryption) BuildPublic(name string, payload []byte) Spec {
	e.tb.Helper()
	return e.build("build_public", map[string]any{"name": name, "payload": hex.EncodeToString(payload)})
}

// Handled is what HandleMessage returned.
type Handled struct {
	Payload       []byte
	Installations []string
	Secrets       [][]byte
}

// Handle is HandleMessage on an encoded ProtocolMessage from from, under messageID
// (for Confirm). status-go's errors come back wrapping ErrRefused.
func (e *Encryption) Handle(name string, from *ecdsa.PublicKey, message, messageID []byte) (Handled, error) {
	var r struct {
		Payload       string
		Installations []string
		Secrets       []string
	}
	if err := e.call("handle", map[string]any{"name": name, "from": hex.EncodeToString(crypto.FromECDSAPub(from)),
		"message": hex.EncodeToString(message), "message_id": hex.EncodeToString(messageID)}, &r); err != nil {
		return Handled{}, err
	}
	h := Handled{Payload: unhexTB(e.tb, r.Payload), Installations: r.Installations}
	for _, s := range r.Secrets {
		h.Secrets = append(h.Secrets, unhexTB(e.tb, s))
	}
	return h, nil
}

// Confirm is ConfirmMessageProcessed (the message key is deleted).
func (e *Encryption) Confirm(name string, messageID []byte) {
	e.tb.Helper()
	e.must("confirm", map[string]any{"name": name, "message_id": hex.EncodeToString(messageID)}, nil)
}

// EnableInstallation enables one of the party's own other installations.
func (e *Encryption) EnableInstallation(name, installationID string) {
	e.tb.Helper()
	e.must("enable_installation", map[string]any{"name": name, "installation_id": installationID}, nil)
}

// Close closes the party's database (NewParty with the same name reopens it).
func (e *Encryption) Close(name string) {
	e.tb.Helper()
	e.must("close", map[string]any{"name": name}, nil)
}

// Vectors runs "statusgo-ref vectors" and returns its JSON.
func Vectors(tb testing.TB) []byte {
	tb.Helper()
	out, err := exec.Command(Build(tb), "vectors").Output()
	if err != nil {
		tb.Fatalf("statusgo-ref vectors: %v", err)
	}
	return out
}

func unhexTB(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("reply hex: %v", err)
	}
	return b
}
