package api

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
)

const testToken = "test-token-0123456789abcdef"

// wait is the deadline of every wait on the server in these tests.
const wait = 10 * time.Second

func testConfig() Config {
	return Config{Listen: "127.0.0.1:0", Token: testToken, Channels: []string{"status", "dev"}}
}

// running is a connector started by start.
type running struct {
	c    *Connector
	host *bridgestest.Host
	url  string // http://127.0.0.1:port
	stop func() error
}

// start builds a connector from cfg, runs it until the test ends and waits until it
// listens. edit, if not nil, may change the connector before Run.
func start(t *testing.T, cfg Config, edit func(*Connector)) *running {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if edit != nil {
		edit(c)
	}
	host := bridgestest.NewHost(c.Name())
	host.Timeout = wait
	runner := bridgestest.Start(t, c, host)
	stop := runner.Stop
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if strings.Contains(host.Logs(), testToken) {
			t.Errorf("the token appears in the logs")
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(wait):
		t.Fatal("connector not listening")
	}
	return &running{c: c, host: host, url: "http://" + c.Addr().String(), stop: stop}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with token (none if "") and returns the whole response.
func (r *running) do(t *testing.T, method, path, token string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// post posts a JSON body to channel ch with the test token.
func (r *running) post(t *testing.T, ch, body string) response {
	t.Helper()
	return r.do(t, "POST", "/v1/channels/"+ch+"/messages", testToken, strings.NewReader(body))
}

// sseEvent is one parsed SSE frame, or a comment (comment set, the rest empty).
type sseEvent struct {
	id, event, data, comment string
}

// stream is an open SSE response read by its own goroutine, which ends when the body
// is closed or ends.
type stream struct {
	resp   *http.Response
	frames chan sseEvent // closed at the end of the body
	done   chan struct{}
	err    error // read error, valid after done
}

// openStream opens GET /v1/channels/{ch}/events; header adds request headers and
// query is appended to the path. It fails the test unless the answer is a 200 stream.
func (r *running) openStream(t *testing.T, ch, query string, header map[string]string) *stream {
	t.Helper()
	req, err := http.NewRequest("GET", r.url+"/v1/channels/"+ch+"/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("open stream: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	s := &stream{resp: resp, frames: make(chan sseEvent, 1000), done: make(chan struct{})}
	go s.readLoop()
	t.Cleanup(func() {
		resp.Body.Close()
		for range s.frames { // unblock the reader
		}
		<-s.done
	})
	return s
}

func (s *stream) readLoop() {
	defer close(s.done)
	defer close(s.frames)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(nil, 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				s.frames <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			s.frames <- sseEvent{comment: strings.TrimSpace(line[1:])}
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				ev.data += v
			}
		}
	}
	s.err = sc.Err()
}

// next returns the next event, skipping comments; it fails the test at the end of
// the stream or on timeout.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-s.frames:
			if !ok {
				t.Fatalf("stream ended (%v)", s.err)
			}
			if ev.comment == "" {
				return ev
			}
		case <-timeout:
			t.Fatal("no SSE event")
		}
	}
}

// ended waits for the end of the stream, discarding what is left.
func (s *stream) ended(t *testing.T) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-s.frames:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("stream did not end")
		}
	}
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// outbound returns an Outbound of a Status message for channel ch of the test
// connector.
func outbound(ch, key, text string) bridges.Outbound {
	return bridges.Outbound{
		Event: bridges.Event{
			Kind: bridges.KindMessage,
			Origin: bridges.Origin{
				Network: "status",
				Channel: "status:test",
				ID:      bridges.RemoteMsgID("status:0xabc" + key),
			},
			Sender: bridges.Sender{ID: "status:0x04aa", Name: "Tall Bold Owl"},
			Text:   text,
			Time:   time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC),
		},
		Channel: bridges.ChannelID("api:" + ch),
		Key:     key,
	}
}
