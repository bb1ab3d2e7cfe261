package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/store"
)

const chatUsage = `usage: bridge chat --peer ENODE [--peer ENODE…] --chat NAME [--mailserver ENODE] [flags]
       bridge chat --peer ENODE [--peer ENODE…] --to KEY|ALIAS [flags]

Joins the Status public chat NAME through the given Whisper peers, prints each message on
stdout as "HH:MM:SS  Alias  text" (sender's time; control characters and terminal escapes
removed, line breaks shown as ⏎) and sends each line typed on stdin, signed with the
identity key. With --to instead of --chat it is a 1:1 session with one Status user (a
chat key 0x04…, 02…/03… or zQ3…, or the three-word alias of an author bridge chat has
shown before), end-to-end encrypted (X3DH and the Double Ratchet, state in the store of
the configuration): typed lines go to that user, and every direct message to the
identity is printed with its author (with the author's short key when it is not the
--to user: aliases are not unique). The authors shown are remembered in
<data_dir>/chat_authors.json. Notices and logs go to stderr. Ctrl-C quits at once. The end of input
(Ctrl-D) quits too, once a peer has had about a second to take what was sent; with no
peer connected within 15 s (the messages' TTL) it exits 1. With --mailserver, the
session also dials that mailserver as a trusted peer and, once it is connected, fetches
the chat's last 24 hours from it (ours or status-go's, following its cursors page by
page), reporting progress on stderr; if the mailserver disconnects meanwhile, the fetch
resumes from the last page once it is back.

flags:
`

// chatOptions are the parsed flags of bridge chat.
type chatOptions struct {
	config     string
	peers      []string
	chat       string
	to         string // --to: a 1:1 session instead of a public chat
	keyFile    string // empty: <data_dir>/chatkey
	format     chat.SendFormat
	aliasWords string // empty: identity.alias_words
	listen     string // empty: no incoming connections
	mailserver string // empty: no history
	msForm     mailserver.RequestForm
	msLimit    uint
}

// peerList is the repeatable --peer flag.
type peerList []string

func (p *peerList) String() string { return strings.Join(*p, ",") }

func (p *peerList) Set(v string) error {
	if _, err := enode.ParseV4(v); err != nil {
		return fmt.Errorf("not an enode URL (enode://<128 hex>@<ip>:<port>): %w", err)
	}
	*p = append(*p, v)
	return nil
}

// parseChatFlags parses and checks args without I/O. When ok is false the session must
// not start: code is exitOK after -h (usage printed) or exitUsage after an error
// (reported on stderr).
func parseChatFlags(args []string, stderr io.Writer) (o chatOptions, code int, ok bool) {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, chatUsage)
		fs.PrintDefaults()
	}
	var peers peerList
	fs.Var(&peers, "peer", "`ENODE` URL of a Whisper peer to dial and keep dialling (repeatable; at least one)")
	fs.StringVar(&o.chat, "chat", "", "`NAME` of the public chat, without the '#' (for example status)")
	fs.StringVar(&o.to, "to", "", "chat `KEY` (0x04…, 02…/03…, zQ3…) or three-word alias of the user to talk to 1:1, instead of --chat")
	fs.StringVar(&o.keyFile, "key", "", "identity key `FILE`, created with mode 0600 if missing (default <data_dir>/chatkey)")
	format := fs.String("format", "both", "payload `FORMAT` of sent messages: both, transit (2019 clients) or protobuf (2020 clients)")
	fs.StringVar(&o.aliasWords, "alias-words", "", "`DIR` holding Status's adjectives.txt and animals.txt, for three-word aliases (default: identity.alias_words)")
	fs.StringVar(&o.listen, "listen", "", "`ADDR` to accept incoming peers on, host:port (default: none)")
	fs.StringVar(&o.mailserver, "mailserver", "", "`ENODE` URL of a mailserver to dial as a trusted peer and fetch the chat's history from (default: none)")
	msForm := fs.String("mailserver-form", "topics", "`FORM` of history requests: topics (status-go's mailservers from 2020, ours), payload (late 2019) or struct (status-go's Messenger)")
	fs.UintVar(&o.msLimit, "mailserver-limit", 1000, "envelopes per history page, `N` (status-go's mailservers refuse more than 1000)")
	fs.StringVar(&o.config, "config", "", "configuration `FILE` (default: the embedded config.example.yaml)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return o, exitOK, false
	} else if err != nil {
		return o, exitUsage, false
	}
	fail := func(format string, a ...any) (chatOptions, int, bool) {
		fmt.Fprintf(stderr, "bridge chat: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run 'bridge chat -h' for the flags")
		return o, exitUsage, false
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if o.msLimit < 1 || o.msLimit > 10000 {
		return fail("--mailserver-limit: %d is not between 1 and 10000", o.msLimit)
	}
	if f, err := mailserver.ParseRequestForm(*msForm); err != nil || f == mailserver.FormBinary {
		return fail("--mailserver-form: %q: want topics, payload or struct", *msForm)
	} else {
		o.msForm = f
	}
	if len(peers) == 0 {
		return fail("--peer: at least one enode URL is required")
	}
	if o.mailserver != "" {
		if _, err := enode.ParseV4(o.mailserver); err != nil {
			return fail("--mailserver: not an enode URL (enode://<128 hex>@<ip>:<port>): %v", err)
		}
	}
	o.peers = peers
	switch {
	case o.chat != "" && o.to != "":
		return fail("--chat and --to: give one (a public chat or a 1:1 session)")
	case o.to != "":
		if o.mailserver != "" {
			return fail("--mailserver: history is for public chats (--chat)")
		}
	case o.chat == "":
		return fail("--chat: a public chat name is required (or --to for a 1:1 session)")
	default:
		if err := chat.ValidateChatName(o.chat); err != nil {
			return fail("--chat: %v", err)
		}
	}
	var err error
	if o.format, err = chat.ParseSendFormat(*format); err != nil {
		return fail("--format: %v", err)
	}
	if o.listen != "" {
		if _, _, err := net.SplitHostPort(o.listen); err != nil {
			return fail("--listen: %v", err)
		}
	}
	return o, exitOK, true
}

// runChat is the bridge chat command: a terminal client of one Status public chat. It
// returns the exit code: exitOK after -h, exitUsage for bad flags, exitConfig for a bad configuration
// file or alias-word directory, exitFail when the node or the identity key fails or no
// peer took the messages sent before the end of input, and exitOK on Ctrl-C (ctx ends)
// or at the end of input.
//
// Messages go to stdout, one line each; the session's own notices and the logs go to
// stderr.
func runChat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, code, ok := parseChatFlags(args, stderr)
	if !ok {
		return code
	}
	cfg, err := loadConfig(o.config)
	if err != nil {
		fmt.Fprintln(stderr, "bridge chat:", err)
		return exitConfig
	}
	namer, err := cfg.Identity.namer()
	if o.aliasWords != "" {
		namer, err = loadNamer("--alias-words", o.aliasWords)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bridge chat:", err)
		return exitConfig
	}
	if o.keyFile == "" {
		o.keyFile = filepath.Join(cfg.DataDir, "chatkey")
	}
	s, err := newChatSession(cfg, o, namer, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bridge chat:", err)
		if errors.Is(err, errBadTo) {
			return exitUsage
		}
		return exitFail
	}
	defer s.close()
	if err := s.run(ctx, stdin); err != nil {
		fmt.Fprintln(stderr, "bridge chat:", err)
		return exitFail
	}
	return exitOK
}

// chatSession is one run of bridge chat: a node, a status client on it, and the user's
// identity.
type chatSession struct {
	o          chatOptions
	nd         *node.Node
	client     *status.Client
	namer      *identity.Namer
	me         *ecdsa.PrivateKey
	mailserver *enode.Node // nil without --mailserver
	authors    *chatAuthors
	to         *ecdsa.PublicKey // --to
	st         *store.Store     // --to: the ratchet state
	stdout     io.Writer
	stderr     io.Writer
}

// errBadTo marks a --to that names nobody.
var errBadTo = errors.New("--to")

// close releases what the session opened.
func (s *chatSession) close() {
	if s.st != nil {
		s.st.Close()
	}
}

func newChatSession(cfg *Config, o chatOptions, namer *identity.Namer, stdout, stderr io.Writer) (*chatSession, error) {
	me, err := node.LoadOrCreateKey(o.keyFile)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	// The devp2p key is throwaway: the chat identity is me, and reusing the gateway's
	// node key would make two processes one node to their peers.
	nodeKey, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	log := cfg.Log.logger(stderr)
	// The node keeps the config's Whisper settings (min_pow, light, …) but dials only
	// --peer, and listens only with --listen.
	nc := cfg.Node.nodeConfig(log.With("net", "status"))
	nc.StaticPeers, nc.TrustedPeers, nc.BootNodes, nc.Discovery = o.peers, nil, nil, node.DiscoveryConfig{}
	nc.ListenAddr, nc.NoListen = o.listen, o.listen == ""
	sc := status.Config{Namer: namer, SendFormat: o.format, Logger: log.With("net", "status")}
	var ms *enode.Node
	if o.mailserver != "" {
		if ms, err = enode.ParseV4(o.mailserver); err != nil {
			return nil, fmt.Errorf("--mailserver: %w", err)
		}
		// Dialled as a trusted peer (as node.AddPeer(url, true) would, but from the
		// start): only a trusted peer's direct envelopes and completions are accepted.
		nc.TrustedPeers = []string{o.mailserver}
		nc.StaticPeers = nil // the mailserver may be a --peer too: dial it once
		for _, u := range o.peers {
			if n, err := enode.ParseV4(u); err == nil && n.ID() != ms.ID() {
				nc.StaticPeers = append(nc.StaticPeers, u)
			}
		}
		// Requests are signed with the node key, as status-go signs them.
		hc, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey, Form: o.msForm, Limit: uint32(o.msLimit),
			MinLimit: min(uint32(o.msLimit), 100), Logger: log.With("net", "mailserver")})
		if err != nil {
			return nil, err
		}
		nc.Whisper.Completions = hc
		sc.History = status.HistoryConfig{Client: hc}
	}
	authors, err := loadChatAuthors(filepath.Join(cfg.DataDir, chatAuthorsFile))
	if err != nil {
		return nil, err
	}
	s := &chatSession{o: o, namer: namer, me: me, mailserver: ms, authors: authors, stdout: stdout, stderr: stderr}
	if o.to != "" {
		if s.to, err = resolveTo(o.to, authors); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadTo, err)
		}
		// The ratchet state of the identity lives in the configuration's store (scoped
		// by identity, so a gateway's store can hold it too).
		if s.st, err = store.Open(context.Background(), cfg.Store); err != nil {
			return nil, err
		}
		sc.Ratchets = status.StoreRatchets(s.st, ratchet.Config{Logger: log.With("net", "ratchet")})
		sc.Identity, sc.Seen = me, s.st
	}
	if s.nd, err = node.New(nc, nodeKey); err != nil {
		s.close()
		return nil, err
	}
	if s.client, err = status.New(s.nd, sc); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// Timing of the session.
const (
	// chatLinger is how long, at the end of input, the session keeps running once a
	// peer is connected: enough broadcast cycles for the last envelopes to leave.
	chatLinger = 3 * whisper.TransmissionCycle
	// chatLingerMax bounds the wait for a peer at the end of input: the envelope TTL,
	// after which what was sent has expired anyway.
	chatLingerMax = status.DefaultTTL * time.Second
	// chatHistoryResumes bounds how often a history fetch cut by the mailserver
	// disconnecting resumes when it is back.
	chatHistoryResumes = 10
	// chatPeerPoll is how often the session looks at the peer count to report changes.
	chatPeerPoll = 250 * time.Millisecond
)

// run runs the node, joins the chat and relays between it and the terminal until ctx
// ends (nil), stdin ends (nil, after lingering) or the node fails.
//
// Goroutines: the node's Run and the printer are waited for before run returns. The
// stdin reader is the one exception: a read from a terminal cannot be cancelled, so it
// may stay blocked after run returns, until the next line or the end of input; it then
// sees that run is done and exits without touching the session.
func (s *chatSession) run(ctx context.Context, stdin io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel (deferred later, so earlier)
	defer cancel()

	nodeErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		nodeErr <- s.nd.Run(ctx)
	}()
	select {
	case <-s.nd.Ready():
	case err := <-nodeErr:
		return nodeStopped(ctx, err)
	case <-ctx.Done():
		return nil
	}
	var send func(ctx context.Context, line string) error
	where := "#" + s.o.chat
	if s.to != nil {
		d, err := s.client.Direct(ctx, s.me)
		if err != nil {
			return err
		}
		defer d.Close() // before wg.Wait: it closes the channels the printer reads
		cv, err := d.Open(s.to)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.printDirectLoop(cv.Messages(), d.Messages())
		}()
		send = func(ctx context.Context, line string) error { _, err := cv.Send(ctx, line); return err }
		where = "1:1 with " + s.namer.Name(s.to) + " (" + identity.ChatKey(s.to) + ")"
	} else {
		ch, err := s.client.Join(ctx, s.o.chat)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.printLoop(ch)
		}()
		if s.mailserver != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.syncHistory(ctx, ch)
			}()
		}
		send = func(ctx context.Context, line string) error { _, err := ch.Send(ctx, line, s.me); return err }
	}

	fmt.Fprintf(s.stderr, "bridge chat: %s as %s (%s); dialling %d peer(s). Type a line and Enter to send; Ctrl-D or Ctrl-C quits.\n",
		where, s.namer.Name(&s.me.PublicKey), identity.ChatKey(&s.me.PublicKey), len(s.o.peers))

	lines := make(chan string) // unbuffered: the reader waits for each send to finish
	readErr := make(chan error, 1)
	go readLinesLoop(stdin, lines, readErr, ctx.Done()) // not waited for: see above

	peers := time.NewTicker(chatPeerPoll)
	defer peers.Stop()
	lastPeers, sent := 0, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-nodeErr:
			return nodeStopped(ctx, err)
		case <-peers.C:
			lastPeers = s.reportPeers(lastPeers)
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					fmt.Fprintf(s.stderr, "bridge chat: read input: %v\n", err)
				}
				if !sent {
					return nil
				}
				return s.linger(ctx, nodeErr)
			}
			if err := send(ctx, line); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fmt.Fprintf(s.stderr, "bridge chat: %v\n", err)
				continue
			}
			sent = true
		}
	}
}

// linger keeps the node running after the end of input until a peer has had
// chatLinger to take the last messages, or chatLingerMax has passed without a peer.
func (s *chatSession) linger(ctx context.Context, nodeErr <-chan error) error {
	deadline := time.NewTimer(chatLingerMax)
	defer deadline.Stop()
	poll := time.NewTicker(chatPeerPoll / 5)
	defer poll.Stop()
	var done <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-nodeErr:
			return nodeStopped(ctx, err)
		case <-deadline.C:
			return fmt.Errorf("no peer connected within %v: the messages sent were not delivered", chatLingerMax)
		case <-done:
			return nil
		case <-poll.C:
			if done == nil && len(s.nd.Peers()) > 0 {
				done = time.After(chatLinger)
			}
		}
	}
}

// syncHistory waits for the mailserver to connect, then fetches the chat's history from
// it once, printing progress on stderr: a line per page and one when done. The messages
// arrive on ch's Messages like live ones. Errors are printed; the session goes on.
func (s *chatSession) syncHistory(ctx context.Context, ch *status.Chat) {
	poll := time.NewTicker(chatPeerPoll / 5)
	defer poll.Stop()
	// A sync that resumes an interrupted range makes a second request, whose count starts
	// again at 0: done counts what finished requests delivered.
	var done uint64
	for attempt := 0; ; attempt++ {
		var p *whisper.Peer
		for p == nil {
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
				p = s.nd.Whisper().Peer(s.mailserver.ID())
			}
		}
		if attempt == 0 {
			fmt.Fprintf(s.stderr, "bridge chat: history: fetching #%s from the mailserver\n", s.o.chat)
		} else {
			fmt.Fprintf(s.stderr, "bridge chat: history: the mailserver is back; resuming\n")
		}
		var last uint64 // delivered by the request under way, as of its last page
		err := ch.SyncHistory(ctx, p, func(pr status.HistoryProgress) {
			if pr.Done {
				done, last = done+pr.Envelopes, 0
				return
			}
			last = pr.Envelopes
			fmt.Fprintf(s.stderr, "bridge chat: history: %d messages, up to %s\n", done+pr.Envelopes, pr.Covered.Local().Format("15:04"))
		})
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, mailserver.ErrPeerGone) && attempt < chatHistoryResumes:
			// The sync state keeps the cursor of the last page: the next attempt goes on
			// from there once the mailserver is connected again.
			done += last
			fmt.Fprintf(s.stderr, "bridge chat: history: the mailserver disconnected after %d messages; resuming when it is back\n", done)
			continue
		case err != nil:
			fmt.Fprintf(s.stderr, "bridge chat: history: %v\n", err)
		default:
			fmt.Fprintf(s.stderr, "bridge chat: history: done (%d messages)\n", done)
		}
		return
	}
}

// reportPeers tells the user when the number of connected peers changes.
func (s *chatSession) reportPeers(last int) int {
	n := len(s.nd.Peers())
	if n != last {
		fmt.Fprintf(s.stderr, "bridge chat: %d peer(s) connected\n", n)
	}
	return n
}

// printLoop writes each message of ch to stdout until ch's messages end.
func (s *chatSession) printLoop(ch *status.Chat) {
	for m := range ch.Messages() {
		s.show(m)
	}
}

// printDirectLoop writes the messages of the conversation and the other direct messages
// to the identity to stdout until both channels are closed.
func (s *chatSession) printDirectLoop(conv, others <-chan *status.Message) {
	for conv != nil || others != nil {
		select {
		case m, ok := <-conv:
			if !ok {
				conv = nil
				continue
			}
			s.show(m)
		case m, ok := <-others:
			if !ok {
				others = nil
				continue
			}
			s.showOther(m)
		}
	}
}

// showOther prints a direct message from someone other than the --to peer with the
// author's short key beside the alias: a three-word alias is not unique (a key can be
// ground to show the peer's), the alias and the key together are not forgeable.
func (s *chatSession) showOther(m *status.Message) {
	shown := *m
	if k := identity.ShortKey(m.Author); k != m.Alias {
		shown.Alias = m.Alias + " [" + k + "]"
	}
	fmt.Fprintln(s.stdout, formatChatLine(&shown))
	if err := s.authors.add(m.Author, m.Alias, time.Now()); err != nil {
		fmt.Fprintf(s.stderr, "bridge chat: remember author: %v\n", err)
	}
}

// show prints m and remembers its author's alias for --to.
func (s *chatSession) show(m *status.Message) {
	fmt.Fprintln(s.stdout, formatChatLine(m))
	if err := s.authors.add(m.Author, m.Alias, time.Now()); err != nil {
		fmt.Fprintf(s.stderr, "bridge chat: remember author: %v\n", err)
	}
}

// formatChatLine renders m as "HH:MM:SS  Alias  text" in local time (the sender's
// timestamp), with the text made safe for a terminal.
func formatChatLine(m *status.Message) string {
	return m.Timestamp.Local().Format("15:04:05") + "  " + sanitizeTerminal(m.Alias) + "  " + sanitizeTerminal(m.Text)
}

// readLinesLoop sends each trimmed, non-empty line of r on lines until the end of input
// or until quit closes; then it closes lines, after putting the read error (nil at EOF)
// on errc.
func readLinesLoop(r io.Reader, lines chan<- string, errc chan<- error, quit <-chan struct{}) {
	sc := bufio.NewScanner(r)
	// Room for the longest text a Status message may hold, in 4-byte runes.
	sc.Buffer(make([]byte, 0, 4096), 4*chat.MaxTextLength+2)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		select {
		case lines <- line:
		case <-quit:
			return
		}
	}
	errc <- sc.Err()
	close(lines)
}

// lineBreak replaces line breaks in displayed text, so one message is one line.
const lineBreak = " ⏎ "

// sanitizeTerminal makes remote text safe to print: it drops ANSI escape sequences (CSI,
// OSC and other ESC sequences, whole), C0 and C1 control characters, DEL and Unicode
// bidirectional controls; shows line breaks (LF, CR, CRLF, U+2028, U+2029) as " ⏎ " and
// tabs as a space; and replaces invalid UTF-8 with U+FFFD. A remote user can thus neither
// move the cursor, set the window title, make hyperlinks, reorder the line nor fake
// further lines.
func sanitizeTerminal(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case r == 0x1b:
			i = skipEscape(s, i)
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				i++
			}
			b.WriteString(lineBreak)
		case r == '\n' || r == '\u2028' || r == '\u2029':
			b.WriteString(lineBreak)
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			// dropped: C0, DEL, C1 (including the 8-bit CSI U+009B) and bidi overrides
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// skipEscape returns the index just past the escape sequence whose ESC ended before i
// (ECMA-48): CSI "[" parameters, intermediates and a final byte; OSC, DCS, SOS, PM and
// APC strings up to BEL or ST (ESC "\"); otherwise intermediates and one final byte.
// An unterminated sequence runs to the end of s.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch c := s[i]; {
	case c == '[':
		i++
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f { // parameters and intermediates
			i++
		}
		if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e { // final byte
			i++
		}
		return i
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default:
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f { // intermediates
			i++
		}
		if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e { // final byte
			i++
		}
		return i
	}
}

// nodeStopped turns the node's Run result into run's: nil when the session was
// interrupted (the node stopped because we cancelled it), else an error.
func nodeStopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("stopped unexpectedly")
	}
	return fmt.Errorf("run node: %w", err)
}
