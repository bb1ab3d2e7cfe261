package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/test/slowloris"
)

// startAdmin runs an admin server (no gateway behind it: only /healthz, /metrics and
// /identicons/ answer) on 127.0.0.1:0 until the test ends, and returns its address.
func startAdmin(t *testing.T, a *adminServer) string {
	t.Helper()
	a.addr = "127.0.0.1:0"
	a.reg = prometheus.NewRegistry()
	a.log = slog.New(slog.DiscardHandler)
	a.bound = make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("admin server: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("admin server did not stop within 10 s")
		}
	})
	select {
	case addr := <-a.bound:
		return addr.String()
	case err := <-done:
		t.Fatalf("admin server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("admin server not listening within 10 s")
	}
	return ""
}

// cpuTime is the CPU time this process has used so far (user + system).
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestAdmin_identiconInputBounded is issue 15 finding 3 against the real listener:
// GET /identicons/z<400k characters> cost 24.7 s of CPU (quadratic base58) on a path
// operators expose publicly. An id longer than any sender ID is answered 414 before any
// decoding, and a request line past the header limit never reaches the handler (431).
func TestAdmin_identiconInputBounded(t *testing.T) {
	addr := startAdmin(t, &adminServer{})
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) int {
		t.Helper()
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // without the URL, which may be 400 kB long
			}
			t.Fatalf("GET %.40s… (%d bytes): %v", path, len(path), err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name string
		id   string
		want int
	}{
		{"8 KiB multibase id", "z" + strings.Repeat("Q3sh", 2<<10), http.StatusRequestURITooLong},
		{"400k multibase id", "z" + strings.Repeat("Q3sh", 100_000), http.StatusRequestHeaderFieldsTooLarge},
		{"valid id", "status:" + testChatKey + ".png", http.StatusOK},
		{"short junk", "zzz", http.StatusNotFound},
	} {
		before := cpuTime(t)
		got := get("/identicons/" + tc.id)
		t.Logf("%s (%d characters): %d, %v of CPU", tc.name, len(tc.id), got, cpuTime(t)-before)
		if got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

// testLimits are listener timeouts short enough for slowloris tests to end in well
// under a second, and far apart from each other so each bound is told apart.
var testLimits = httpLimits{
	readHeader:     300 * time.Millisecond,
	read:           600 * time.Millisecond,
	write:          2 * time.Second,
	idle:           400 * time.Millisecond,
	maxHeaderBytes: 8 << 10,
}

// TestAdmin_slowClientsCutOff is issue 15 finding 4 for the admin listener: with only
// ReadHeaderTimeout set, an idle keep-alive connection and a body dribbled one byte at
// a time stayed open for ever (seen open after 150 s). Each attack must now be cut off
// by its own bound.
func TestAdmin_slowClientsCutOff(t *testing.T) {
	addr := startAdmin(t, &adminServer{limits: testLimits})
	get := "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n"
	post := "POST /healthz HTTP/1.1\r\nHost: admin\r\nContent-Length: 100000\r\n\r\n"
	for _, tc := range []struct {
		attack  slowloris.Attack
		request string
	}{
		{slowloris.Idle, ""},
		{slowloris.IdleKeepAlive, get},
		{slowloris.DripHeader, get},
		{slowloris.DripBody, post},
	} {
		t.Run(tc.attack.String(), func(t *testing.T) {
			took := slowloris.Run(t, addr, tc.attack, slowloris.Options{Request: tc.request, Within: 5 * time.Second})
			t.Logf("closed after %v", took.Round(time.Millisecond))
		})
	}
}
