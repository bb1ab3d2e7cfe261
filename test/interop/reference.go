package interop

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RefEnv names the environment variable that, when set, gives the path of a
// prebuilt whisper-ref binary; BuildReference then builds nothing.
const RefEnv = "STATUSGATE_WHISPER_REF"

const (
	// callTimeout bounds one request/reply exchange with whisper-ref.
	callTimeout = 60 * time.Second
	// exitTimeout is how long cleanup waits for whisper-ref to exit after
	// its stdin is closed, before killing it.
	exitTimeout = 5 * time.Second
	// stderrLimit caps how much of whisper-ref's stderr is kept for errors.
	stderrLimit = 64 << 10
	// builtName is the build output name that test/reference/.gitignore
	// ignores; it is left out of the content hash.
	builtName = "whisper-ref"
)

// ErrRefused is wrapped by the errors of calls that the reference answered
// with an error (for example an envelope it could not decode), as opposed to
// harness failures such as a dead process or an unreadable reply.
var ErrRefused = errors.New("whisper-ref refused the request")

// BuildReference returns the path of a whisper-ref binary built from
// test/reference. If STATUSGATE_WHISPER_REF is set, that path is used as is.
// Otherwise the binary lives in <os.UserCacheDir()>/statusgate under a name
// derived from a sha256 of every file in test/reference (and the Go
// version), and is built there when missing. A cold build takes about a
// minute. The build writes a temporary file and renames it into place, so
// concurrent test processes are safe. A failed build fails tb.
func BuildReference(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(RefEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("%s: %v", RefEnv, err)
		}
		return p
	}
	dir, err := referenceDir()
	if err != nil {
		tb.Fatalf("build whisper-ref: %v", err)
	}
	sum, err := hashTree(dir)
	if err != nil {
		tb.Fatalf("build whisper-ref: %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		tb.Fatalf("build whisper-ref: %v", err)
	}
	outDir := filepath.Join(cache, "statusgate")
	final := filepath.Join(outDir, "whisper-ref-"+sum[:16])
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		return final
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		tb.Fatalf("build whisper-ref: %v", err)
	}
	tmp, err := os.CreateTemp(outDir, ".whisper-ref-*.tmp")
	if err != nil {
		tb.Fatalf("build whisper-ref: %v", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // no-op after a successful rename

	start := time.Now()
	cmd := exec.Command(goTool(), "build", "-o", tmpName, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("build whisper-ref in %s: %v\n%s", dir, err, out)
	}
	if err := os.Rename(tmpName, final); err != nil {
		tb.Fatalf("build whisper-ref: %v", err)
	}
	tb.Logf("built whisper-ref in %v: %s", time.Since(start).Round(time.Millisecond), final)
	return final
}

// referenceDir finds test/reference next to this source file.
func referenceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate interop source file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "reference")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("reference module: %w", err)
	}
	return dir, nil
}

// hashTree returns the hex sha256 over the Go version and the relative path
// and contents of every regular file under dir, in lexical order, leaving
// out a whisper-ref binary built in dir itself.
func hashTree(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\x00", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == builtName {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goTool returns the go command of the toolchain running the tests.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// Reference is one running "whisper-ref serve" process. Its methods may be
// called from several goroutines; requests are serialised.
type Reference struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	reader *bufio.Reader
	stderr *limitedBuffer
	done   chan struct{} // closed when the process has exited
	// waitErr is cmd.Wait's result; read it only after done is closed.
	waitErr error
	// broken, once set, is returned by every later call; set under mu.
	broken error
	// killed records that the harness killed the process; set under mu.
	killed bool
}

// StartReference builds (see BuildReference) and starts a whisper-ref serve
// process. tb's cleanup closes its stdin and waits for it to exit, killing
// it after 5 s.
func StartReference(tb testing.TB) *Reference {
	tb.Helper()
	bin := BuildReference(tb)
	r, err := startReference(bin)
	if err != nil {
		tb.Fatalf("start whisper-ref: %v", err)
	}
	tb.Cleanup(func() {
		if err := r.close(); err != nil {
			tb.Errorf("stop whisper-ref: %v", err)
		}
	})
	return r
}

func startReference(bin string) (*Reference, error) {
	// A pipe of our own, rather than cmd.StdoutPipe, so that the goroutine
	// waiting for the process never closes stdout under a pending read.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r := &Reference{
		cmd:    exec.Command(bin, "serve"),
		stdout: pr,
		reader: bufio.NewReaderSize(pr, 1<<20),
		stderr: &limitedBuffer{limit: stderrLimit},
		done:   make(chan struct{}),
	}
	r.cmd.Stdout = pw
	r.cmd.Stderr = r.stderr
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// close ends the process: EOF on stdin, then a kill if it lingers.
func (r *Reference) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.stdout.Close()
	r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(exitTimeout):
		r.killed = true
		r.cmd.Process.Kill()
		<-r.done
		r.broken = errors.New("whisper-ref is closed")
		return fmt.Errorf("did not exit within %v of stdin closing, killed; stderr: %s", exitTimeout, r.stderr)
	}
	wasBroken := r.broken != nil
	r.broken = errors.New("whisper-ref is closed")
	if r.waitErr != nil && !r.killed && !wasBroken {
		return fmt.Errorf("%w; stderr: %s", r.waitErr, r.stderr)
	}
	return nil
}

// call sends one request line and decodes the one reply line into resp.
func (r *Reference) call(op string, req, resp any) error {
	line, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("whisper-ref %s: encode request: %w", op, err)
	}
	line = append(line, '\n')

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken != nil {
		return fmt.Errorf("whisper-ref %s: %w", op, r.broken)
	}
	timer := time.AfterFunc(callTimeout, func() { r.cmd.Process.Kill() })
	var reply []byte
	_, err = r.stdin.Write(line)
	if err == nil {
		reply, err = r.reader.ReadBytes('\n')
	}
	if !timer.Stop() {
		r.killed = true
		r.broken = fmt.Errorf("no answer within %v, process killed", callTimeout)
		return fmt.Errorf("whisper-ref %s: %w", op, r.broken)
	}
	if err != nil {
		r.broken = fmt.Errorf("process failed: %v (%s); stderr: %s", err, r.exitStatus(), r.stderr)
		return fmt.Errorf("whisper-ref %s: %w", op, r.broken)
	}
	if err := json.Unmarshal(reply, resp); err != nil {
		return fmt.Errorf("whisper-ref %s: bad reply %q: %w", op, bytes.TrimSpace(reply), err)
	}
	return nil
}

// exitStatus describes how the process ended, waiting briefly for it.
func (r *Reference) exitStatus() string {
	select {
	case <-r.done:
		if r.waitErr != nil {
			return "exit: " + r.waitErr.Error()
		}
		return "exit status 0"
	case <-time.After(time.Second):
		return "still running"
	}
}

// SealRequest is the input of Reference.Seal: geth's MessageParams.
type SealRequest struct {
	Payload []byte
	// Padding is used as is; nil or empty asks geth for random padding.
	Padding  []byte
	Topic    [4]byte
	TTL      uint32 // 0 makes geth use its default, 50
	PoW      float64
	WorkTime uint32 // seconds
	// SymKey is the AES-256-GCM key; ignored by geth when DstPub is set.
	SymKey []byte
	// DstPub is a 65-byte uncompressed secp256k1 public key (04…); when set
	// the message is ECIES-encrypted to it.
	DstPub []byte
	// SrcPriv is a 32-byte secp256k1 private key; when set the message is
	// signed.
	SrcPriv []byte
}

// SealResult is a sealed envelope made by the reference.
type SealResult struct {
	Envelope []byte // RLP encoding, as sent on the wire
	Hash     [32]byte
	PoW      float64
	Expiry   uint32
	TTL      uint32
	Nonce    uint64
}

// Opened is the result of Reference.Open. OK is false, with Error set, when
// the reference could not decode or open the envelope.
type Opened struct {
	OK      bool
	Error   string
	Payload []byte
	Padding []byte
	Signer  []byte // 65-byte uncompressed public key; nil if unsigned
	PoW     float64
	Hash    [32]byte // envelope hash
	Topic   [4]byte
	TTL     uint32
	Sent    uint32 // expiry - ttl
}

// Derived is what Status derives from a public chat name.
type Derived struct {
	Topic  [4]byte  // keccak256(s)[:4]
	Bloom  [64]byte // TopicToBloom(Topic)
	SymKey []byte   // PBKDF2-SHA256(s, no salt, 65356 iterations, 32 bytes)
}

// EnvelopeInfo describes a decoded envelope.
type EnvelopeInfo struct {
	Hash   [32]byte
	PoW    float64
	Expiry uint32
	TTL    uint32
	Topic  [4]byte
	Nonce  uint64
	Bloom  [64]byte
	Size   int // 20 + len(Data)
}

// wireFloat reads the reference's pow values: a JSON number, or "+Inf",
// "-Inf" or "NaN" for the non-finite values JSON cannot carry.
type wireFloat float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *wireFloat) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "+Inf":
			*f = wireFloat(math.Inf(1))
		case "-Inf":
			*f = wireFloat(math.Inf(-1))
		case "NaN":
			*f = wireFloat(math.NaN())
		default:
			return fmt.Errorf("bad float %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = wireFloat(v)
	return nil
}

func refused(op, msg string) error {
	return fmt.Errorf("whisper-ref %s: %w: %s", op, ErrRefused, msg)
}

// Seal makes an envelope with geth's NewSentMessage + Wrap.
func (r *Reference) Seal(req SealRequest) (SealResult, error) {
	const op = "seal"
	in := req.fields()
	in["op"] = op
	var out struct {
		Error    string    `json:"error"`
		Envelope string    `json:"envelope"`
		Hash     string    `json:"hash"`
		PoW      wireFloat `json:"pow"`
		Expiry   uint32    `json:"expiry"`
		TTL      uint32    `json:"ttl"`
		Nonce    uint64    `json:"nonce"`
	}
	if err := r.call(op, in, &out); err != nil {
		return SealResult{}, err
	}
	if out.Error != "" {
		return SealResult{}, refused(op, out.Error)
	}
	res := SealResult{PoW: float64(out.PoW), Expiry: out.Expiry, TTL: out.TTL, Nonce: out.Nonce}
	var d hexDecoder
	res.Envelope = d.bytes("envelope", out.Envelope)
	d.fixed("hash", out.Hash, res.Hash[:])
	if d.err != nil {
		return SealResult{}, fmt.Errorf("whisper-ref %s: %w", op, d.err)
	}
	return res, nil
}

// fields is the wire form of a seal request, shared by serve's "seal" and node's
// "post": the optional byte fields are left out when empty ("absent" on the wire).
func (req SealRequest) fields() map[string]any {
	f := map[string]any{
		"payload":   hex.EncodeToString(req.Payload),
		"topic":     hex.EncodeToString(req.Topic[:]),
		"ttl":       req.TTL,
		"pow":       req.PoW,
		"work_time": req.WorkTime,
	}
	for k, v := range map[string][]byte{"padding": req.Padding, "sym_key": req.SymKey, "dst_pub": req.DstPub, "src_priv": req.SrcPriv} {
		if len(v) > 0 {
			f[k] = hex.EncodeToString(v)
		}
	}
	return f
}

// Open decodes env (RLP) and opens it with geth's Envelope.Open, using
// either the symmetric key or the private key: exactly one must be non-nil.
// The reference's refusal is Opened{OK: false, Error: ...}, not an error.
func (r *Reference) Open(env []byte, symKey []byte, priv []byte) (Opened, error) {
	const op = "open"
	if (symKey == nil) == (priv == nil) {
		return Opened{}, errors.New("whisper-ref open: give exactly one of symKey and priv")
	}
	in := struct {
		Op       string `json:"op"`
		Envelope string `json:"envelope"`
		SymKey   string `json:"sym_key,omitempty"`
		Priv     string `json:"priv,omitempty"`
	}{
		Op:       op,
		Envelope: hex.EncodeToString(env),
		SymKey:   hex.EncodeToString(symKey),
		Priv:     hex.EncodeToString(priv),
	}
	var out struct {
		OK      bool      `json:"ok"`
		Error   string    `json:"error"`
		Payload string    `json:"payload"`
		Padding string    `json:"padding"`
		Signer  string    `json:"signer"`
		PoW     wireFloat `json:"pow"`
		Hash    string    `json:"hash"`
		Topic   string    `json:"topic"`
		TTL     uint32    `json:"ttl"`
		Sent    uint32    `json:"sent"`
	}
	if err := r.call(op, in, &out); err != nil {
		return Opened{}, err
	}
	if !out.OK {
		if out.Error == "" {
			return Opened{}, fmt.Errorf("whisper-ref %s: reply has neither ok nor error", op)
		}
		return Opened{OK: false, Error: out.Error}, nil
	}
	res := Opened{OK: true, PoW: float64(out.PoW), TTL: out.TTL, Sent: out.Sent}
	var d hexDecoder
	res.Payload = d.bytes("payload", out.Payload)
	res.Padding = d.bytes("padding", out.Padding)
	res.Signer = d.bytes("signer", out.Signer)
	d.fixed("hash", out.Hash, res.Hash[:])
	d.fixed("topic", out.Topic, res.Topic[:])
	if d.err != nil {
		return Opened{}, fmt.Errorf("whisper-ref %s: %w", op, d.err)
	}
	return res, nil
}

// Derive returns the topic, bloom and password-derived key for s, computed
// by geth (BytesToTopic(keccak256(s)), TopicToBloom, AddSymKeyFromPassword).
func (r *Reference) Derive(s string) (Derived, error) {
	const op = "derive"
	in := struct {
		Op string `json:"op"`
		S  string `json:"s"`
	}{op, s}
	var out struct {
		Error  string `json:"error"`
		Topic  string `json:"topic"`
		Bloom  string `json:"bloom"`
		SymKey string `json:"sym_key"`
	}
	if err := r.call(op, in, &out); err != nil {
		return Derived{}, err
	}
	if out.Error != "" {
		return Derived{}, refused(op, out.Error)
	}
	var res Derived
	var d hexDecoder
	d.fixed("topic", out.Topic, res.Topic[:])
	d.fixed("bloom", out.Bloom, res.Bloom[:])
	res.SymKey = d.bytes("sym_key", out.SymKey)
	if d.err != nil {
		return Derived{}, fmt.Errorf("whisper-ref %s: %w", op, d.err)
	}
	return res, nil
}

// Envelope decodes raw (RLP) as geth does and reports its public fields. An
// envelope geth cannot decode gives an error wrapping ErrRefused.
func (r *Reference) Envelope(raw []byte) (EnvelopeInfo, error) {
	const op = "envelope"
	in := struct {
		Op       string `json:"op"`
		Envelope string `json:"envelope"`
	}{op, hex.EncodeToString(raw)}
	var out struct {
		Error  string    `json:"error"`
		Hash   string    `json:"hash"`
		PoW    wireFloat `json:"pow"`
		Expiry uint32    `json:"expiry"`
		TTL    uint32    `json:"ttl"`
		Topic  string    `json:"topic"`
		Nonce  uint64    `json:"nonce"`
		Bloom  string    `json:"bloom"`
		Size   int       `json:"size"`
	}
	if err := r.call(op, in, &out); err != nil {
		return EnvelopeInfo{}, err
	}
	if out.Error != "" {
		return EnvelopeInfo{}, refused(op, out.Error)
	}
	res := EnvelopeInfo{PoW: float64(out.PoW), Expiry: out.Expiry, TTL: out.TTL, Nonce: out.Nonce, Size: out.Size}
	var d hexDecoder
	d.fixed("hash", out.Hash, res.Hash[:])
	d.fixed("topic", out.Topic, res.Topic[:])
	d.fixed("bloom", out.Bloom, res.Bloom[:])
	if d.err != nil {
		return EnvelopeInfo{}, fmt.Errorf("whisper-ref %s: %w", op, d.err)
	}
	return res, nil
}

// BloomMatch reports geth's BloomFilterMatch(filter, sample).
func (r *Reference) BloomMatch(filter, sample [64]byte) (bool, error) {
	const op = "bloom_match"
	in := struct {
		Op     string `json:"op"`
		Filter string `json:"filter"`
		Sample string `json:"sample"`
	}{op, hex.EncodeToString(filter[:]), hex.EncodeToString(sample[:])}
	var out struct {
		Error string `json:"error"`
		Match *bool  `json:"match"`
	}
	if err := r.call(op, in, &out); err != nil {
		return false, err
	}
	if out.Error != "" {
		return false, refused(op, out.Error)
	}
	if out.Match == nil {
		return false, fmt.Errorf("whisper-ref %s: reply has no match", op)
	}
	return *out.Match, nil
}

// hexDecoder decodes reply fields, keeping the first error.
type hexDecoder struct {
	err error
}

// bytes decodes a variable-length field; "" gives nil.
func (d *hexDecoder) bytes(field, s string) []byte {
	if d.err != nil || s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		d.err = fmt.Errorf("reply field %s: %w", field, err)
		return nil
	}
	return b
}

// fixed decodes a field that must fill dst exactly.
func (d *hexDecoder) fixed(field, s string, dst []byte) {
	if d.err != nil {
		return
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		d.err = fmt.Errorf("reply field %s: %w", field, err)
		return
	}
	if len(b) != len(dst) {
		d.err = fmt.Errorf("reply field %s: want %d bytes, got %d", field, len(dst), len(b))
		return
	}
	copy(dst, b)
}

// limitedBuffer keeps the first limit bytes written to it; it is safe for
// concurrent use.
type limitedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

// Write implements io.Writer; it never fails.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String returns what was kept, trimmed, or "(empty)".
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return "(empty)"
	}
	return s
}
