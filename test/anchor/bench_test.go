package anchor

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/ircd"
	"github.com/statusgate/statusgate/test/matterbridge"
)

// relay is one relay process under test, seen from its api side.
type relay interface {
	name() string
	pid() int
	// ircNick is the relay's nick on IRC: the lines it writes are the api's messages.
	ircNick() string
	// post sends text into the relay's api as the api user user.
	post(ctx context.Context, user, text string) error
}

// mbRelay adapts test/matterbridge's process.
type mbRelay struct{ p *matterbridge.Process }

func (m mbRelay) name() string    { return "matterbridge" }
func (m mbRelay) pid() int        { return m.p.Pid() }
func (m mbRelay) ircNick() string { return "matterbridge" }
func (m mbRelay) post(ctx context.Context, user, text string) error {
	return m.p.Post(ctx, user, text)
}

// channel is the relayed IRC channel.
const channel = "#anchor"

// rates are the offered loads, messages a second; 0 is "max": as fast as the clients
// send (api: 64 connections, each POSTing when its previous POST was answered; IRC: one
// connection writing line after line).
var rates = []int{100, 1000, 0}

// posters is the number of concurrent api clients (keep-alive connections).
const posters = 64

// quiet ends a run that has not received every message: nothing more for this long.
const quiet = 15 * time.Second

// BenchmarkAnchor runs both relays, one after the other, each relaying the same ngircd
// channel and its own api, in both directions at each rate. b.N is the number of
// messages of a run (make bench: 2,000).
//
//   - irc-to-api: an IRC user (test/ircd.User, a bare client) writes each message as a
//     PRIVMSG; the api client reads it from the relay's stream (ours: the api
//     connector's SSE; matterbridge: its api bridge's websocket, where it broadcasts
//     as it relays: its /api/stream hands out one message each 200 ms).
//   - api-to-irc: api clients POST each message as one of 50 api users; the IRC user
//     reads the relay's line.
//
// Latency is from the moment a message was due (its slot at the offered rate: a relay
// that answers POSTs late is charged for the wait) to its arrival; at rate=max, from
// the start of its POST or write. msg/s is messages received over the span from the
// first slot to the last arrival. lost counts what did not arrive within 15 s of the
// last arrival. relay-cpu-us/msg is the relay process's CPU time (utime + stime from
// /proc, every thread) per message sent; relay-RSS-MB its resident memory after the run.
func BenchmarkAnchor(b *testing.B) {
	b.Run("relay=matterbridge", func(b *testing.B) {
		srv := ircd.Start(b, ircd.Options{})
		mb := matterbridge.Start(b, matterbridge.Config{IRCServer: srv.Addr(), IRCChannel: channel})
		h := newHarness(b, srv, mbRelay{mb})
		mb.Stream(b, func(m matterbridge.Message, at time.Time) { h.apiReceived(m.Text, at) })
		h.run(b)
	})
	b.Run("relay=statusgate", func(b *testing.B) {
		srv := ircd.Start(b, ircd.Options{})
		o := startOurs(b, srv.Addr(), channel)
		h := newHarness(b, srv, o)
		o.stream(b, h.apiReceived)
		h.run(b)
	})
}

// harness drives one relay: the IRC user, the api readers' callback, the runs.
type harness struct {
	r    relay
	user *ircd.User
	runs atomic.Int64 // the current run's number, in every message's text
	cur  atomic.Pointer[collector]
}

func newHarness(b *testing.B, srv *ircd.Server, r relay) *harness {
	h := &harness{r: r}
	h.user = ircd.JoinUser(b, srv, "alice", channel, func(l ircd.Line) {
		if l.Nick == r.ircNick() {
			h.received(l.Text, l.At)
		}
	})
	return h
}

func (h *harness) apiReceived(text string, at time.Time) { h.received(text, at) }

// tag is each message's mark: run and sequence number.
var tag = regexp.MustCompile(`anchor (\d+)\.(\d+) `)

func (h *harness) received(text string, at time.Time) {
	c := h.cur.Load()
	if c == nil {
		return
	}
	m := tag.FindStringSubmatch(text)
	if m == nil {
		return
	}
	run, _ := strconv.ParseInt(m[1], 10, 64)
	seq, _ := strconv.Atoi(m[2])
	if run != c.run || seq < 0 || seq >= len(c.recv) {
		return // a late line of an earlier run
	}
	if c.recv[seq].CompareAndSwap(0, at.UnixNano()) {
		if c.count.Add(1) == int64(len(c.recv)) {
			close(c.all)
		}
		select {
		case c.progress <- struct{}{}:
		default:
		}
	}
}

// collector is one run's record: when each message was due and when it arrived.
type collector struct {
	run      int64
	due      []int64 // unix ns, written by the sender before the message goes out
	recv     []atomic.Int64
	count    atomic.Int64
	all      chan struct{} // closed when every message arrived
	progress chan struct{} // signalled at each arrival
}

func (h *harness) run(b *testing.B) {
	for _, dir := range []string{"irc-to-api", "api-to-irc"} {
		for _, rate := range rates {
			name := "rate=max"
			if rate > 0 {
				name = "rate=" + strconv.Itoa(rate)
			}
			b.Run(dir+"/"+name, func(b *testing.B) { h.measure(b, dir, rate) })
		}
	}
}

// text is message seq of run: a chat line of about 70 bytes.
func text(run int64, seq int) string {
	return fmt.Sprintf("anchor %d.%d the quick brown fox jumps over the lazy dog", run, seq)
}

func (h *harness) measure(b *testing.B, dir string, rate int) {
	n := b.N
	c := &collector{run: h.runs.Add(1), due: make([]int64, n), recv: make([]atomic.Int64, n),
		all: make(chan struct{}), progress: make(chan struct{}, 1)}
	h.cur.Store(c)
	defer h.cur.Store(nil)
	cpu0 := cpuTime(b, h.r.pid())
	b.ResetTimer()
	start := time.Now()
	var sendErr error
	if dir == "irc-to-api" {
		sendErr = h.sendIRC(c, start, rate)
	} else {
		sendErr = h.sendAPI(c, start, rate)
	}
	sent := time.Now()
	if sendErr != nil {
		b.Fatalf("%s: send: %v", h.r.name(), sendErr)
	}
	timer := time.NewTimer(quiet)
	defer timer.Stop()
wait:
	for {
		select {
		case <-c.all:
			break wait
		case <-c.progress:
			timer.Reset(quiet)
		case <-timer.C:
			break wait
		}
	}
	b.StopTimer()
	cpu := cpuTime(b, h.r.pid()) - cpu0

	var lat []float64
	var last int64
	for i := range n {
		at := c.recv[i].Load()
		if at == 0 {
			continue
		}
		lat = append(lat, float64(at-c.due[i])/1e6)
		last = max(last, at)
	}
	slices.Sort(lat)
	got := len(lat)
	if got == 0 {
		b.Fatalf("%s %s: no message arrived within %v of the last send", h.r.name(), dir, quiet)
	}
	span := time.Duration(last - start.UnixNano())
	b.ReportMetric(float64(got)/span.Seconds(), "msg/s")
	b.ReportMetric(quantile(lat, 0.50), "p50-ms")
	b.ReportMetric(quantile(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(n-got), "lost")
	b.ReportMetric(float64(n)/sent.Sub(start).Seconds(), "offered-msg/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "relay-cpu-us/msg")
	b.ReportMetric(rssMB(h.r.pid()), "relay-RSS-MB")
}

func quantile(sorted []float64, q float64) float64 {
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// sendIRC writes the run's messages as the IRC user, each at its slot (rate > 0) or
// one after the other (rate 0).
func (h *harness) sendIRC(c *collector, start time.Time, rate int) error {
	for i := range c.due {
		due := slot(start, i, rate)
		if rate > 0 {
			time.Sleep(time.Until(due))
		} else {
			due = time.Now()
		}
		c.due[i] = due.UnixNano()
		if err := h.user.Say(text(c.run, i)); err != nil {
			return err
		}
		if err := h.user.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// sendAPI POSTs the run's messages from posters clients, as api users u0…u49: each
// message at its slot (rate > 0: a message waits for a free client, and its latency
// counts from its slot), or each client POSTing as soon as its previous POST was
// answered (rate 0).
func (h *harness) sendAPI(c *collector, start time.Time, rate int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	jobs := make(chan int, len(c.due))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range posters {
		wg.Go(func() {
			for i := range jobs {
				if rate == 0 {
					c.due[i] = time.Now().UnixNano()
				}
				if err := h.r.post(ctx, "u"+strconv.Itoa(i%50), text(c.run, i)); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("message %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
	for i := range c.due {
		if rate > 0 {
			due := slot(start, i, rate)
			time.Sleep(time.Until(due))
			c.due[i] = due.UnixNano()
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return first
}

// slot is when message i is due at rate messages a second.
func slot(start time.Time, i, rate int) time.Time {
	if rate <= 0 {
		return start
	}
	return start.Add(time.Duration(i) * time.Second / time.Duration(rate))
}

// cpuTime is the process's user + system CPU time so far (/proc/<pid>/stat, in clock
// ticks of 10 ms).
func cpuTime(b *testing.B, pid int) time.Duration {
	buf, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("read CPU time: %v", err)
	}
	// Fields after the command (in parentheses, which may hold spaces): state is the
	// first, utime the 12th, stime the 13th.
	s := string(buf)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		b.Fatalf("read CPU time: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// rssMB is the process's VmRSS in MB, 0 if unreadable.
func rssMB(pid int) float64 {
	buf, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(buf), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
