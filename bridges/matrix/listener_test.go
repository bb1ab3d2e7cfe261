package matrix

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/homeserver"
	"github.com/statusgate/statusgate/test/slowloris"
)

// TestListener_slowClientsCutOff is issue 15 finding 4 for the appservice listener,
// registered with a real Dendrite: with only ReadHeaderTimeout set, idle keep-alive
// connections and bodies dribbled a byte every 15 s were still open after 150 s. Each
// attack, with and without the hs_token, must now be cut off by its own bound
// (shortened here).
func TestListener_slowClientsCutOff(t *testing.T) {
	c, cfg := startListener(t, func(c *Connector) {
		c.limits = httpLimits{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond,
			write: 2 * time.Second, idle: 400 * time.Millisecond, maxHeaderBytes: 16 << 10}
	})
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

// startListener registers a connector with a real Dendrite and runs it (edit, if not
// nil, changes it first) until the test ends; it returns once the portal rooms are set
// up.
func startListener(t *testing.T, edit func(*Connector)) (*Connector, Config) {
	t.Helper()
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
	if edit != nil {
		edit(c)
	}
	runner := bridgestest.Start(t, c, bridgestest.NewHost(c.Name()))
	select {
	case <-c.Ready():
	case <-runner.Done():
		t.Fatalf("Run stopped early: %v", runner.Ended())
	case <-time.After(30 * time.Second):
		t.Fatalf("portal rooms not ready within 30 s; sessions ended: %v\n%s", runner.Ended(), hs.Log())
	}
	return c, cfg
}

// TestListener_hsTokenOnlyInHeader is issue 15 finding 14 for the appservice listener:
// the hs_token was also accepted as ?access_token=, where reverse proxies and access
// logs keep it. Homeservers send "Authorization: Bearer" (Matrix v1.4; Dendrite
// always, Synapse since 1.70), so the query form is refused; the Dendrite registered
// here keeps delivering (the connector's other tests).
func TestListener_hsTokenOnlyInHeader(t *testing.T) {
	c, cfg := startListener(t, nil)
	base := "http://" + c.cfg.Listen + "/_matrix/app/v1/transactions/"
	put := func(txn, query, header string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, base+txn+query, strings.NewReader(`{"events":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("Authorization", "Bearer "+header)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name          string
		query, header string
		want          int
	}{
		{"header", "", cfg.HSToken, http.StatusOK},
		{"query only", "?access_token=" + url.QueryEscape(cfg.HSToken), "", http.StatusForbidden},
		{"wrong header, right query", "?access_token=" + url.QueryEscape(cfg.HSToken), "wrong", http.StatusForbidden},
		{"none", "", "", http.StatusForbidden},
	} {
		if got := put("t-"+strings.ReplaceAll(tc.name, " ", "-"), tc.query, tc.header); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
