package slack

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/slackfake"
	"github.com/statusgate/statusgate/test/slowloris"
)

// TestEventsHTTP_slowClientsCutOff is issue 15 finding 4 for the Events API listener
// (which had its timeouts already when the finding was filed): idle connections, an
// idle keep-alive, dribbled headers and dribbled bodies, signed or not, are each cut
// off by their own bound (shortened here).
func TestEventsHTTP_slowClientsCutOff(t *testing.T) {
	fake := newFake(t)
	r := startWith(t, httpConfig(fake), false, func(c *Connector) {
		c.limits = httpLimits{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond,
			write: 2 * time.Second, idle: 400 * time.Millisecond, maxHeaderBytes: 16 << 10}
	})
	u, err := url.Parse(eventsURL(t, r))
	if err != nil {
		t.Fatal(err)
	}
	// A request Slack would send, signed, answered with a keep-alive: url_verification.
	body := []byte(`{"type":"url_verification","challenge":"c"}`)
	signed, err := slackfake.SignedRequest(u.String(), slackfake.SigningSecret, time.Now(), body, 0)
	if err != nil {
		t.Fatal(err)
	}
	headers := "Host: slack\r\n"
	for _, k := range []string{"X-Slack-Signature", "X-Slack-Request-Timestamp"} {
		headers += k + ": " + signed.Header.Get(k) + "\r\n"
	}
	verify := "POST " + u.Path + " HTTP/1.1\r\n" + headers + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	post := func(headers string) string {
		return "POST " + u.Path + " HTTP/1.1\r\n" + headers + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
	}
	for _, tc := range []struct {
		name    string
		attack  slowloris.Attack
		request string
	}{
		{"idle", slowloris.Idle, ""},
		{"idle keep-alive", slowloris.IdleKeepAlive, verify},
		{"header dribble", slowloris.DripHeader, verify},
		{"body dribble with signature headers", slowloris.DripBody, post(headers)},
		{"body dribble unsigned", slowloris.DripBody, post("Host: slack\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			took := slowloris.Run(t, u.Host, tc.attack, slowloris.Options{Request: tc.request, Within: 5 * time.Second})
			t.Logf("closed after %v", took.Round(time.Millisecond))
		})
	}
}

// TestEventsHTTP_unsignedRequestsNotFlooding is issue 15 finding 14 for the Events API
// endpoint: every unsigned request was logged at WARN, so anyone who can reach the
// endpoint could flood the log. Refusals are counted (RejectedRequests, a metric in
// bridge run) and logged at most once a minute, with the number refused since; the
// signature headers are checked before the body is read.
func TestEventsHTTP_unsignedRequestsNotFlooding(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	url := eventsURL(t, r)
	const n = 100
	for i := range n {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"type":"event_callback"}`))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 { // a forged signature
			req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
			req.Header.Set("X-Slack-Signature", "v0=00")
		}
		if code := send(t, req); code != http.StatusUnauthorized {
			t.Fatalf("request %d answered %d, want 401", i, code)
		}
	}
	logs := r.host.Logs()
	warned := strings.Count(logs, "level=WARN")
	t.Logf("%d unsigned requests: %d WARN lines, %d counted", n, warned, r.c.RejectedRequests())
	if warned > 1 {
		t.Errorf("%d unsigned requests logged %d WARN lines, want at most 1 a minute", n, warned)
	}
	if got := r.c.RejectedRequests(); got != n {
		t.Errorf("RejectedRequests = %d, want %d", got, n)
	}
}
