package api

import (
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/slowloris"
)

// TestServer_slowClientsCutOff is issue 15 finding 4 for the api listener (which had
// its timeouts already when the finding was filed): idle connections, an idle
// keep-alive, dribbled headers and dribbled bodies, with and without the token, are
// each cut off by their own bound (shortened here).
func TestServer_slowClientsCutOff(t *testing.T) {
	r := start(t, testConfig(), func(c *Connector) {
		c.limits = httpLimits{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond,
			write: 2 * time.Second, idle: 400 * time.Millisecond, maxHeaderBytes: 16 << 10}
	})
	addr := strings.TrimPrefix(r.url, "http://")
	auth := "Authorization: Bearer " + testToken + "\r\n"
	get := "GET /v1/channels HTTP/1.1\r\nHost: api\r\n" + auth + "\r\n"
	post := func(auth string) string {
		return "POST /v1/channels/status/messages HTTP/1.1\r\nHost: api\r\n" + auth +
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
		{"body dribble with token", slowloris.DripBody, post(auth)},
		{"body dribble without token", slowloris.DripBody, post("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			took := slowloris.Run(t, addr, tc.attack, slowloris.Options{Request: tc.request, Within: 5 * time.Second})
			t.Logf("closed after %v", took.Round(time.Millisecond))
		})
	}
}
