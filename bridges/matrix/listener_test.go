package matrix

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/homeserver"
	"github.com/statusgate/statusgate/test/slowloris"
)

// TestListener_slowClientsCutOff is issue 15 finding 4 for the appservice listener,
// registered with a real Dendrite: with only ReadHeaderTimeout set, idle keep-alive
// connections and bodies dribbled a byte every 15 s were still open after 150 s. Each
// attack, with and without the hs_token, must now be cut off by its own bound
// (shortened here).
func TestListener_slowClientsCutOff(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1")
	reg, err := RegistrationYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := homeserver.Start(t, homeserver.Options{Registrations: [][]byte{reg}})
	cfg.HomeserverURL = hs.URL()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.limits = httpLimits{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond,
		write: 2 * time.Second, idle: 400 * time.Millisecond, maxHeaderBytes: 16 << 10}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, newTestHost(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("portal rooms not ready within 30 s\n%s", hs.Log())
	}

	auth := "Authorization: Bearer " + cfg.HSToken + "\r\n"
	get := "GET /_matrix/app/v1/users/@nobody:" + homeserver.ServerName + " HTTP/1.1\r\nHost: as\r\n" + auth + "\r\n"
	put := func(auth string) string {
		return "PUT /_matrix/app/v1/transactions/slow HTTP/1.1\r\nHost: as\r\n" + auth +
			"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
	}
	for _, tc := range []struct {
		name    string
		attack  slowloris.Attack
		request string
	}{
		{"idle", slowloris.Idle, ""},
		{"idle keep-alive", slowloris.IdleKeepAlive, get},
		{"header dribble", slowloris.DripHeader, get},
		{"body dribble with hs_token", slowloris.DripBody, put(auth)},
		{"body dribble without hs_token", slowloris.DripBody, put("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			took := slowloris.Run(t, c.cfg.Listen, tc.attack, slowloris.Options{Request: tc.request, Within: 5 * time.Second})
			t.Logf("closed after %v", took.Round(time.Millisecond))
		})
	}
}
