package main

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/whisper/whisperv6"
)

// benchSink keeps benchmark results alive so the compiler cannot drop the
// work that produced them.
var benchSink bool

// Workload constants. statusgate's own benchmarks run the identical work, and
// a report divides the two results, so none of these may change on one side
// only.
const (
	benchTTL      = 15
	benchPoW      = 0.002
	benchWorkTime = 5
	// Seal256/Seal4K use a fixed envelope, independent of the clock.
	sealExpiry = 1575000015
	seal256Len = 540  // Data length of a signed, padded 256-byte payload
	seal4KLen  = 4380 // Data length of a signed, padded 4096-byte payload
	chatCount  = 100
	chatHit    = 42 // the FilterDispatch100 filter that must receive the envelope
	bloomHit   = 50 // the BloomMatch sample topic

	// Ingest: envelopes of TTL ingestTTL, sent to the node in code-1
	// (messagesCode) packets of ingestPerPacket envelopes each.
	ingestTTL       = 300
	ingestPerPacket = 64
	ingestPoll      = 200 * time.Microsecond // Retrieve polling interval
	ingestTimeout   = 60 * time.Second       // for all b.N deliveries
	shhStatusCode   = 0                      // whisperv6 statusCode (unexported)
	shhMessagesCode = 1                      // whisperv6 messagesCode (unexported)

	// ArchiveIngest / HistoryQuery10K: geth's LevelDB mailserver.
	mailPassword  = "status-offline-inbox" // WMailServer.Init password (only used for requests)
	mailDataLen   = 600                    // Data length of an archived envelope
	mailTTL       = 15                     // archived envelopes' TTL
	mailT0        = 1575000000             // created time of the first archived envelope
	mailSpan      = 3600                   // created times are spread over [mailT0, mailT0+mailSpan)
	historyCount  = 10000                  // envelopes archived for HistoryQuery10K
	historyBudget = 60 * time.Second       // sanity bound on one HistoryQuery10K setup
)

// fixtures are the inputs shared by the workloads.
type fixtures struct {
	whisper  *whisperv6.Whisper
	cleanups []func()            // run when bench returns
	symKey   []byte              // geth AddSymKeyFromPassword("status")
	topic    whisperv6.TopicType // keccak256("status")[:4] = cd423760
	alice    *ecdsa.PrivateKey   // crypto.ToECDSA(keccak256("alice"))
	bob      *ecdsa.PrivateKey   // crypto.ToECDSA(keccak256("bob"))

	chatKeys   [][]byte              // chatKeys[i] = PBKDF2 key of "chat-<i>", i < chatCount
	chatTopics []whisperv6.TopicType // chatTopics[i] = topicOf("chat-<i>")
}

// workload is one benchmark. run returns an error instead of failing the
// benchmark itself, because testing.Benchmark discards failure messages.
type workload struct {
	name string
	run  func(b *testing.B) error
}

// bench implements "whisper-ref bench".
func bench(args []string, out, diag io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(diag)
	benchtime := fs.String("benchtime", "1s", "run each benchmark for `D` (a duration, or Nx for N iterations)")
	count := fs.Int("count", 1, "run each benchmark `N` times")
	only := fs.String("bench", "", "run only the benchmarks whose name matches `REGEXP` (all when empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if *count < 1 {
		return fmt.Errorf("bench: -count must be at least 1, got %d", *count)
	}
	match, err := regexp.Compile(*only)
	if err != nil {
		return fmt.Errorf("bench: -bench: %w", err)
	}
	testing.Init()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		return fmt.Errorf("bench: -benchtime: %w", err)
	}

	start := time.Now()
	fx, err := newFixtures()
	if err != nil {
		return fmt.Errorf("bench: fixtures: %w", err)
	}
	defer func() {
		for _, f := range fx.cleanups {
			f()
		}
	}()
	workloads, err := fx.workloads(diag)
	if err != nil {
		return fmt.Errorf("bench: setup: %w", err)
	}
	workloads = slices.DeleteFunc(workloads, func(w workload) bool { return !match.MatchString(w.name) })
	fmt.Fprintf(diag, "whisper-ref: setup took %v\n", time.Since(start).Round(time.Millisecond))

	procs := runtime.GOMAXPROCS(0)
	names := make([]string, len(workloads))
	width := 0
	for i, w := range workloads {
		names[i] = "Benchmark" + w.name
		if procs != 1 { // the same rule as go test
			names[i] += fmt.Sprintf("-%d", procs)
		}
		width = max(width, len(names[i]))
	}

	fmt.Fprintf(out, "goos: %s\n", runtime.GOOS)
	fmt.Fprintf(out, "goarch: %s\n", runtime.GOARCH)
	fmt.Fprintf(out, "pkg: reference/geth-v1.9.20-whisperv6\n")
	for i, w := range workloads {
		for range *count {
			var failure error
			r := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				if err := w.run(b); err != nil {
					failure = err
					b.Fatal(err)
				}
			})
			if failure != nil {
				return fmt.Errorf("%s: %w", names[i], failure)
			}
			if r.N == 0 {
				return fmt.Errorf("%s: benchmark did not run", names[i])
			}
			fmt.Fprintf(out, "%-*s\t%s\t%s\n", width, names[i], r.String(), r.MemString())
		}
	}
	return nil
}

func newFixtures() (*fixtures, error) {
	fx := &fixtures{whisper: whisperv6.StandaloneWhisperService(nil)}
	var err error
	if fx.symKey, err = fx.passwordKey("status"); err != nil {
		return nil, err
	}
	fx.topic = topicOf("status")
	if fx.alice, err = crypto.ToECDSA(crypto.Keccak256([]byte("alice"))); err != nil {
		return nil, fmt.Errorf("alice key: %w", err)
	}
	if fx.bob, err = crypto.ToECDSA(crypto.Keccak256([]byte("bob"))); err != nil {
		return nil, fmt.Errorf("bob key: %w", err)
	}
	for i := range chatCount {
		name := fmt.Sprintf("chat-%d", i)
		key, err := fx.passwordKey(name)
		if err != nil {
			return nil, err
		}
		fx.chatKeys = append(fx.chatKeys, key)
		fx.chatTopics = append(fx.chatTopics, topicOf(name))
	}
	return fx, nil
}

// passwordKey is geth's AddSymKeyFromPassword + GetSymKey, i.e.
// PBKDF2-SHA256(password, no salt, 65356 iterations, 32 bytes).
func (fx *fixtures) passwordKey(password string) ([]byte, error) {
	id, err := fx.whisper.AddSymKeyFromPassword(password)
	if err != nil {
		return nil, fmt.Errorf("derive key %q: %w", password, err)
	}
	defer fx.whisper.DeleteSymKey(id)
	key, err := fx.whisper.GetSymKey(id)
	if err != nil {
		return nil, fmt.Errorf("derive key %q: %w", password, err)
	}
	return key, nil
}

// topicOf is the first 4 bytes of keccak256(s).
func topicOf(s string) whisperv6.TopicType {
	return whisperv6.BytesToTopic(crypto.Keccak256([]byte(s)))
}

// payload returns n bytes with payload[i] = byte(i).
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// sealData returns n bytes with data[i] = byte(i*7).
func sealData(n int) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(i * 7)
	}
	return d
}

// wrap is NewSentMessage + Wrap, followed by an RLP round trip so that the
// result is an envelope as a receiving node holds it.
func wrap(p *whisperv6.MessageParams) (*whisperv6.Envelope, error) {
	msg, err := whisperv6.NewSentMessage(p)
	if err != nil {
		return nil, fmt.Errorf("new sent message: %w", err)
	}
	env, err := msg.Wrap(p)
	if err != nil {
		return nil, fmt.Errorf("wrap: %w", err)
	}
	raw, err := rlp.EncodeToBytes(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	decoded := new(whisperv6.Envelope)
	if err := rlp.DecodeBytes(raw, decoded); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return decoded, nil
}

// workloads builds the eleven benchmarks. Setup runs once, outside the timed
// functions; diag gets the Seal nonces.
func (fx *fixtures) workloads(diag io.Writer) ([]workload, error) {
	var ws []workload

	for _, c := range []struct {
		name string
		n    int
	}{{"Wrap256", 256}, {"Wrap4K", 4096}} {
		pl := payload(c.n)
		ws = append(ws, workload{c.name, func(b *testing.B) error {
			for range b.N {
				p := &whisperv6.MessageParams{
					TTL: benchTTL, PoW: benchPoW, WorkTime: benchWorkTime,
					Src: fx.alice, KeySym: fx.symKey, Topic: fx.topic, Payload: pl,
				}
				msg, err := whisperv6.NewSentMessage(p)
				if err != nil {
					return fmt.Errorf("new sent message: %w", err)
				}
				if _, err := msg.Wrap(p); err != nil {
					return fmt.Errorf("wrap: %w", err)
				}
			}
			return nil
		}})
	}

	for _, c := range []struct {
		name string
		n    int
	}{{"Seal256", seal256Len}, {"Seal4K", seal4KLen}} {
		env := &whisperv6.Envelope{Expiry: sealExpiry, TTL: benchTTL, Topic: fx.topic, Data: sealData(c.n)}
		params := &whisperv6.MessageParams{PoW: benchPoW, WorkTime: benchWorkTime}
		if err := env.Seal(params); err != nil {
			return nil, fmt.Errorf("%s: seal: %w", c.name, err)
		}
		fmt.Fprintf(diag, "whisper-ref: %s nonce=%d pow=%g\n", c.name, env.Nonce, env.PoW())
		ws = append(ws, workload{c.name, func(b *testing.B) error {
			for range b.N {
				env.Nonce = 0
				if err := env.Seal(params); err != nil {
					return fmt.Errorf("seal: %w", err)
				}
			}
			return nil
		}})
	}

	symEnv, err := wrap(&whisperv6.MessageParams{
		TTL: benchTTL, PoW: benchPoW, WorkTime: benchWorkTime,
		Src: fx.alice, KeySym: fx.symKey, Topic: fx.topic, Payload: payload(256),
	})
	if err != nil {
		return nil, fmt.Errorf("OpenSym: %w", err)
	}
	symFilter := &whisperv6.Filter{KeySym: fx.symKey, SymKeyHash: crypto.Keccak256Hash(fx.symKey)}
	asymEnv, err := wrap(&whisperv6.MessageParams{
		TTL: benchTTL, PoW: benchPoW, WorkTime: benchWorkTime,
		Src: fx.alice, Dst: &fx.bob.PublicKey, Topic: fx.topic, Payload: payload(256),
	})
	if err != nil {
		return nil, fmt.Errorf("OpenAsym: %w", err)
	}
	asymFilter := &whisperv6.Filter{KeyAsym: fx.bob}
	for _, c := range []struct {
		name   string
		env    *whisperv6.Envelope
		filter *whisperv6.Filter
	}{{"OpenSym", symEnv, symFilter}, {"OpenAsym", asymEnv, asymFilter}} {
		if c.env.Open(c.filter) == nil {
			return nil, fmt.Errorf("%s: setup envelope does not open", c.name)
		}
		ws = append(ws, workload{c.name, func(b *testing.B) error {
			for range b.N {
				if c.env.Open(c.filter) == nil {
					return errors.New("open failed")
				}
			}
			return nil
		}})
	}

	bloomFilter := make([]byte, whisperv6.BloomFilterSize)
	for i := range chatCount {
		for j, x := range whisperv6.TopicToBloom(fx.chatTopics[i]) {
			bloomFilter[j] |= x
		}
	}
	bloomSample := whisperv6.TopicToBloom(fx.chatTopics[bloomHit])
	ws = append(ws, workload{"BloomMatch", func(b *testing.B) error {
		for range b.N {
			benchSink = whisperv6.BloomFilterMatch(bloomFilter, bloomSample)
		}
		if !benchSink {
			return errors.New("bloom does not match")
		}
		return nil
	}})

	filters := whisperv6.NewFilters(fx.whisper)
	var hit *whisperv6.Filter
	for i := range chatCount {
		t := fx.chatTopics[i]
		f := &whisperv6.Filter{
			KeySym:   fx.chatKeys[i],
			Topics:   [][]byte{t[:]},
			AllowP2P: false,
			Messages: make(map[common.Hash]*whisperv6.ReceivedMessage),
		}
		if _, err := filters.Install(f); err != nil {
			return nil, fmt.Errorf("FilterDispatch100: install chat-%d: %w", i, err)
		}
		if i == chatHit {
			hit = f
		}
	}
	dispatchEnv, err := wrap(&whisperv6.MessageParams{
		TTL: benchTTL, PoW: benchPoW, WorkTime: benchWorkTime,
		Src: fx.alice, KeySym: hit.KeySym, Topic: fx.chatTopics[chatHit], Payload: payload(256),
	})
	if err != nil {
		return nil, fmt.Errorf("FilterDispatch100: %w", err)
	}
	ws = append(ws, workload{"FilterDispatch100", func(b *testing.B) error {
		for range b.N {
			filters.NotifyWatchers(dispatchEnv, false)
		}
		b.StopTimer()
		if got := len(hit.Retrieve()); got != 1 {
			return fmt.Errorf("chat-%d filter got %d messages, want 1", chatHit, got)
		}
		return nil
	}})

	ingest, err := fx.ingestWorkload()
	if err != nil {
		return nil, fmt.Errorf("Ingest: %w", err)
	}
	ws = append(ws, ingest)

	ws = append(ws, fx.archiveIngestWorkload())
	history, err := fx.historyQueryWorkload()
	if err != nil {
		return nil, fmt.Errorf("HistoryQuery10K: %w", err)
	}
	ws = append(ws, history)

	return ws, nil
}

// ingestWorkload builds Ingest: envelope ingest through a whole whisperv6 node
// (decode, validate, dedupe into the pool, bloom, dispatch to chatCount
// filters, decrypt and verify), fed by a peer over p2p.MsgPipe. The
// encrypted, signed Data of one message per chat filter is built here, once.
func (fx *fixtures) ingestWorkload() (workload, error) {
	data := make([][]byte, chatCount)
	for i := range chatCount {
		env, err := wrap(&whisperv6.MessageParams{
			TTL: ingestTTL, PoW: 0, // PoW 0: Wrap does no sealing work
			Src: fx.alice, KeySym: fx.chatKeys[i], Topic: fx.chatTopics[i], Payload: payload(256),
		})
		if err != nil {
			return workload{}, err
		}
		f := &whisperv6.Filter{KeySym: fx.chatKeys[i], SymKeyHash: crypto.Keccak256Hash(fx.chatKeys[i])}
		if env.Open(f) == nil {
			return workload{}, fmt.Errorf("chat-%d: setup envelope does not open", i)
		}
		data[i] = env.Data
	}
	// nextNonce makes the envelope hashes unique across all rounds of the
	// process: each round takes the nonces [nextNonce, nextNonce+b.N).
	var nextNonce uint64
	return workload{"Ingest", func(b *testing.B) error {
		base := nextNonce
		nextNonce += uint64(b.N)
		return fx.ingestRound(b, data, base)
	}}, nil
}

// ingestRound is one testing.Benchmark round of Ingest on a fresh node.
func (fx *fixtures) ingestRound(b *testing.B, data [][]byte, nonceBase uint64) (err error) {
	// whisperv6.New needs a *node.Node in v1.9.20; StandaloneWhisperService
	// is the same constructor without the node registration.
	w := whisperv6.StandaloneWhisperService(&whisperv6.Config{
		MaxMessageSize:     whisperv6.DefaultMaxMessageSize,
		MinimumAcceptedPOW: 0,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// The node's bloom filter is nil (match all) until a filter is
	// installed, so Subscribe never calls SetBloomFilter, whose 10 s
	// goroutine would make Stop wait.
	filters := make([]*whisperv6.Filter, chatCount)
	for i := range chatCount {
		t := fx.chatTopics[i]
		filters[i] = &whisperv6.Filter{KeySym: fx.chatKeys[i], Topics: [][]byte{t[:]}, AllowP2P: false}
		if _, err := w.Subscribe(filters[i]); err != nil {
			w.Stop()
			return fmt.Errorf("subscribe chat-%d: %w", i, err)
		}
	}

	now := uint32(time.Now().Unix())
	packets := make([][]byte, 0, (b.N+ingestPerPacket-1)/ingestPerPacket)
	batch := make([]*whisperv6.Envelope, 0, ingestPerPacket)
	for j := range b.N {
		batch = append(batch, &whisperv6.Envelope{
			Expiry: now + ingestTTL,
			TTL:    ingestTTL,
			Topic:  fx.chatTopics[j%chatCount],
			Data:   data[j%chatCount],
			Nonce:  nonceBase + uint64(j),
		})
		if len(batch) == ingestPerPacket || j == b.N-1 {
			p, err := rlp.EncodeToBytes(batch)
			if err != nil {
				w.Stop()
				return fmt.Errorf("encode packet: %w", err)
			}
			packets = append(packets, p)
			batch = batch[:0]
		}
	}

	// The node side of the pipe is rw1. HandlePeer closes the pipe when it
	// returns, so a write to a dead peer fails instead of blocking.
	rw1, rw2 := p2p.MsgPipe()
	peerDone := make(chan error, 1)
	go func() {
		err := w.HandlePeer(p2p.NewPeer(enode.ID{1}, "bench", nil), rw1)
		rw1.Close()
		peerDone <- err
	}()
	drained := make(chan struct{})
	defer func() {
		rw2.Close() // closes both ends
		peerErr := <-peerDone
		<-drained
		w.Stop()
		if err != nil && peerErr != nil && !errors.Is(peerErr, p2p.ErrPipeClosed) {
			err = fmt.Errorf("%w (peer: %v)", err, peerErr)
		}
	}()

	// Handshake as the remote peer: send our status, read the node's.
	if err := p2p.SendItems(rw2, shhStatusCode, whisperv6.ProtocolVersion, math.Float64bits(0), whisperv6.MakeFullNodeBloom(), false); err != nil {
		close(drained)
		return fmt.Errorf("send status: %w", err)
	}
	status, err := rw2.ReadMsg()
	if err != nil {
		close(drained)
		return fmt.Errorf("read status: %w", err)
	}
	if status.Code != shhStatusCode {
		close(drained)
		return fmt.Errorf("node sent code %d before status", status.Code)
	}
	status.Discard()
	// Drain whatever the node sends (its broadcasts) so it never blocks.
	go func() {
		defer close(drained)
		for {
			msg, err := rw2.ReadMsg()
			if err != nil {
				return
			}
			msg.Discard()
		}
	}()

	b.ResetTimer()
	for _, p := range packets {
		if err := rw2.WriteMsg(p2p.Msg{Code: shhMessagesCode, Size: uint32(len(p)), Payload: bytes.NewReader(p)}); err != nil {
			return fmt.Errorf("write packet: %w", err)
		}
	}
	got := 0
	var sample *whisperv6.ReceivedMessage
	deadline := time.Now().Add(ingestTimeout)
	for {
		for _, f := range filters {
			msgs := f.Retrieve()
			got += len(msgs)
			if sample == nil && len(msgs) > 0 {
				sample = msgs[0]
			}
		}
		if got >= b.N {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout: %d of %d envelopes delivered after %v", got, b.N, ingestTimeout)
		}
		time.Sleep(ingestPoll)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")

	if got != b.N {
		return fmt.Errorf("%d envelopes delivered, want %d", got, b.N)
	}
	if sample.Src == nil || !bytes.Equal(crypto.FromECDSAPub(sample.Src), crypto.FromECDSAPub(&fx.alice.PublicKey)) {
		return errors.New("delivered message is not signed by alice")
	}
	if !bytes.Equal(sample.Payload, payload(256)) {
		return errors.New("delivered message has the wrong payload")
	}
	return nil
}

// mailEnvelopes builds n envelopes as a mailserver archives them:
// envelope j = {Expiry: created_j + mailTTL, TTL: mailTTL, Topic: topic,
// Data: sealData(mailDataLen), Nonce: j} with created_j = mailT0 +
// floor(j*mailSpan/n), so the created times rise over [mailT0,
// mailT0+mailSpan) and all hashes differ. Each envelope's hash is computed
// here: geth's add() hashes an envelope before it calls Archive, so in a
// node Archive's env.Hash() is a cached field read.
func (fx *fixtures) mailEnvelopes(n int) []*whisperv6.Envelope {
	data := sealData(mailDataLen)
	envs := make([]*whisperv6.Envelope, n)
	for j := range envs {
		created := uint32(mailT0 + uint64(j)*mailSpan/uint64(n))
		envs[j] = &whisperv6.Envelope{
			Expiry: created + mailTTL,
			TTL:    mailTTL,
			Topic:  fx.topic,
			Data:   data,
			Nonce:  uint64(j),
		}
		envs[j].Hash()
	}
	return envs
}

// archiveIngestWorkload builds ArchiveIngest: b.N calls of geth's
// WMailServer.Archive (key BE(created) ‖ hash, value the envelope's RLP, one
// unsynced LevelDB Put each) into a fresh database per round.
func (fx *fixtures) archiveIngestWorkload() workload {
	return workload{"ArchiveIngest", func(b *testing.B) error {
		b.StopTimer()
		envs := fx.mailEnvelopes(b.N)
		ms, err := newMailServer(fx.whisper, mailPassword, 0)
		if err != nil {
			return err
		}
		defer ms.close()
		b.StartTimer()
		for _, env := range envs {
			ms.Archive(env)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
		// Everything must be in the database (Archive only logs errors).
		got := processRequest(ms.ms, nil, mailT0, mailT0+mailSpan, whisperv6.MakeFullNodeBloom())
		if len(got) != b.N {
			return fmt.Errorf("%d envelopes archived, want %d", len(got), b.N)
		}
		return nil
	}}
}

// historyQueryWorkload builds HistoryQuery10K: one processRequest over the
// whole created range of historyCount archived envelopes, all of topic
// "status", with the bloom TopicToBloom(topic). The database is built once,
// here, with Archive.
func (fx *fixtures) historyQueryWorkload() (workload, error) {
	start := time.Now()
	ms, err := newMailServer(fx.whisper, mailPassword, 0)
	if err != nil {
		return workload{}, err
	}
	fx.cleanups = append(fx.cleanups, ms.close)
	for _, env := range fx.mailEnvelopes(historyCount) {
		ms.Archive(env)
	}
	bloom := whisperv6.TopicToBloom(fx.topic)
	if got := len(processRequest(ms.ms, nil, mailT0, mailT0+mailSpan, bloom)); got != historyCount {
		return workload{}, fmt.Errorf("setup: query returned %d envelopes, want %d", got, historyCount)
	}
	if d := time.Since(start); d > historyBudget {
		return workload{}, fmt.Errorf("setup took %v", d)
	}
	return workload{"HistoryQuery10K", func(b *testing.B) error {
		var got []*whisperv6.Envelope
		for range b.N {
			got = processRequest(ms.ms, nil, mailT0, mailT0+mailSpan, bloom)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)*historyCount/b.Elapsed().Seconds(), "envelopes/s")
		if len(got) != historyCount {
			return fmt.Errorf("query returned %d envelopes, want %d", len(got), historyCount)
		}
		// LevelDB order: created time, then hash.
		for i := 1; i < len(got); i++ {
			if got[i].Expiry < got[i-1].Expiry {
				return fmt.Errorf("query result %d is older than result %d", i, i-1)
			}
		}
		if first, last := got[0].Expiry-got[0].TTL, got[len(got)-1].Expiry-got[len(got)-1].TTL; first != mailT0 || last != mailT0+mailSpan-1 {
			return fmt.Errorf("query results created %d..%d, want %d..%d", first, last, mailT0, mailT0+mailSpan-1)
		}
		return nil
	}}, nil
}
