package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/freeport"
)

func TestConfig_validate(t *testing.T) {
	good := testConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key  string
		edit func(*Config)
	}{
		{"api.name", func(c *Config) { c.Name = "API" }},
		{"api.listen", func(c *Config) { c.Listen = "localhost" }},
		{"api.listen", func(c *Config) { c.Listen = "127.0.0.1:http" }},
		{"api.listen", func(c *Config) { c.Listen = "127.0.0.1:70000" }},
		{"api.token", func(c *Config) { c.Token = "" }},
		{"api.token", func(c *Config) { c.Token = "two words" }},
		{"api.channels", func(c *Config) { c.Channels = nil }},
		{"api.channels[1]", func(c *Config) { c.Channels = []string{"ok", "a/b"} }},
		{"api.channels[0]", func(c *Config) { c.Channels = []string{""} }},
		{"api.channels[0]", func(c *Config) { c.Channels = []string{"a\x00"} }},
		{"api.channels[0]", func(c *Config) { c.Channels = []string{strings.Repeat("c", 300)} }},
		{"api.channels[1]", func(c *Config) { c.Channels = []string{"x", "x"} }},
		{"api.max_body_bytes", func(c *Config) { c.MaxBodyBytes = -1 }},
		{"api.replay", func(c *Config) { c.Replay = -1 }},
		{"api.replay_bytes", func(c *Config) { c.ReplayBytes = -1 }},
		{"api.subscriber_buffer", func(c *Config) { c.SubscriberBuffer = -1 }},
		{"api.heartbeat", func(c *Config) { c.Heartbeat = -time.Second }},
	}
	for _, tc := range cases {
		cfg := testConfig()
		cfg.Token = "secret-token-value"
		tc.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: error %v, want one naming %s", tc.key, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), "secret-token-value") {
			t.Errorf("error %v holds the token", err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", tc.key)
		}
	}
	c, err := New(Config{Token: "t", Channels: []string{"status"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "api", Listen: "127.0.0.1:8480", Token: "t", Channels: []string{"status"},
		MaxBodyBytes: 128 << 10, Replay: 10000, ReplayBytes: 16 << 20, SubscriberBuffer: 2048, Heartbeat: 15 * time.Second}
	if c.cfg.String() != want.String() || c.Name() != "api" {
		t.Errorf("defaults %v, want %v", c.cfg, want)
	}
	if caps := c.Capabilities(); caps != (bridges.Capabilities{Replies: true}) {
		t.Errorf("capabilities %+v", caps)
	}
	if c.Addr() != nil {
		t.Errorf("Addr before Run: %v", c.Addr())
	}
	for _, s := range []string{fmt.Sprint(good), fmt.Sprintf("%+v", good), fmt.Sprintf("%#v", good)} {
		if strings.Contains(s, testToken) {
			t.Errorf("formatted config holds the token: %s", s)
		}
	}
}

func TestRun_cancelStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		r := start(t, testConfig(), nil)
		if st := r.host.WaitState(t, bridges.StateConnecting); st.Err != nil {
			t.Errorf("connecting with error %v", st.Err)
		}
		r.host.WaitState(t, bridges.StateConnected)
		s := r.openStream(t, "status", "", nil)
		if resp := r.post(t, "status", `{"user":"a","text":"b"}`); resp.status != 202 {
			t.Fatalf("post: %d %s", resp.status, resp.body)
		}
		if _, err := r.c.Send(context.Background(), outbound("status", "k", "x")); err != nil {
			t.Fatal(err)
		}
		s.next(t)
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		s.ended(t) // the SSE stream was closed by the shutdown
		if r.c.Addr() != nil {
			t.Errorf("Addr after Run: %v", r.c.Addr())
		}
		if _, err := http.Get(r.url + "/v1/channels"); err == nil {
			t.Errorf("still serving after Run returned")
		}
		if !strings.Contains(r.host.Logs(), "api server stopped") {
			t.Errorf("no stop log:\n%s", r.host.Logs())
		}
	}()
	http.DefaultClient.CloseIdleConnections()
	// Goroutines of closed connections exit asynchronously; allow them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRun_portTakenThenFreed(t *testing.T) {
	// The port is reserved for this test process and below the ephemeral range: once
	// taken closes, no outgoing connection of this or another process can land on it
	// before the connector's next try binds it.
	taken, err := net.Listen("tcp", freeport.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig()
	cfg.Listen = taken.Addr().String()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := bridgestest.NewHost("api")
	runner := bridgestest.Start(t, c, host)
	defer func() {
		if err := runner.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	host.WaitState(t, bridges.StateConnecting)
	st := host.WaitState(t, bridges.StateTransientDisconnect)
	if st.Err == nil || !strings.Contains(st.Err.Error(), "address already in use") {
		t.Errorf("transient disconnect with error %v", st.Err)
	}
	select {
	case <-c.Ready():
		t.Fatal("ready while the port is taken")
	default:
	}
	if c.Addr() != nil {
		t.Errorf("Addr while the port is taken: %v", c.Addr())
	}
	taken.Close()
	host.WaitState(t, bridges.StateConnected)
	<-c.Ready()
	if got := c.Addr().String(); got != cfg.Listen {
		t.Errorf("listening on %s, want %s", got, cfg.Listen)
	}
	r := &running{c: c, host: host, url: "http://" + cfg.Listen}
	if resp := r.do(t, "GET", "/v1/channels", testToken, nil); resp.status != 200 {
		t.Errorf("after connecting: %d", resp.status)
	}
}

func TestRun_cancelWhileRetrying(t *testing.T) {
	taken, err := net.Listen("tcp", freeport.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig()
	cfg.Listen = taken.Addr().String()
	c, _ := New(cfg)
	host := bridgestest.NewHost("api")
	runner := bridgestest.Start(t, c, host)
	host.WaitState(t, bridges.StateTransientDisconnect)
	stopped := make(chan error, 1)
	go func() { stopped <- runner.Stop() }()
	select { // between sessions: the stop must not wait for the next one
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
}

func TestRun_misuse(t *testing.T) {
	c, _ := New(testConfig())
	if err := c.Run(context.Background(), nil); err == nil {
		t.Error("Run with a nil host succeeded")
	}
	var zero Connector
	if err := zero.Run(context.Background(), bridgestest.NewHost("api")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Run of a zero Connector: %v", err)
	}
	r := start(t, testConfig(), nil)
	if err := r.c.Run(context.Background(), bridgestest.NewHost("api")); err == nil {
		t.Error("second Run succeeded")
	}
}
