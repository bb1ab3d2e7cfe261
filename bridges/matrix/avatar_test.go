package matrix

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
)

// avatarServer stands in for the gateway's /identicons/ endpoint: a PNG for every
// sender ID except those starting "status:0xbad", counting requests by path.
type avatarServer struct {
	*httptest.Server
	png  []byte
	mu   sync.Mutex
	hits map[string]int
}

func newAvatarServer(t *testing.T) *avatarServer {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{R: 200, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	a := &avatarServer{png: buf.Bytes(), hits: map[string]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits[r.URL.EscapedPath()]++
		a.mu.Unlock()
		if r.URL.Path == "/identicons/status:0xbad" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(a.png)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *avatarServer) count(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

// TestConnector_ghostAvatar: with AvatarURLBase set, a ghost gets the picture served at
// base + the escaped sender ID as its avatar, fetched and uploaded once; a restarted
// connector finds the avatar in the profile and fetches nothing; an endpoint failure
// does not fail the message.
func TestConnector_ghostAvatar(t *testing.T) {
	av := newAvatarServer(t)
	r := newRig(t, func(c *Config) { c.AvatarURLBase = av.URL + "/identicons/" })
	const sender = "status:0x04abcdef"
	path := "/identicons/" + url.PathEscape(sender)
	ghost := id.NewUserID(ghostLocalpart(DefaultGhostPrefix, sender), "localhost")

	for i, key := range []string{"k-av-1", "k-av-2"} {
		if _, err := r.c.Send(ctxT(t), outbound(t, bridges.KindMessage, sender, "Bob", "hi", key)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := av.count(path); n != 1 {
		t.Errorf("%s fetched %d times, want 1", path, n)
	}
	mxc, err := r.human.GetAvatarURL(ctxT(t), ghost)
	if err != nil || mxc.IsEmpty() || mxc.Homeserver != "localhost" {
		t.Fatalf("ghost avatar_url = %q, %v; want an mxc://localhost/ URI", mxc, err)
	}
	got, err := r.human.DownloadBytes(ctxT(t), mxc)
	if err != nil {
		t.Fatalf("download %s: %v", mxc, err)
	}
	if !bytes.Equal(got, av.png) {
		t.Errorf("avatar content: %d bytes, want the served %d-byte PNG", len(got), len(av.png))
	}

	// A restart forgets the cache; the profile already has the avatar: no fetch, and
	// the avatar is unchanged.
	r.stop()
	r.start(t)
	if _, err := r.c.Send(ctxT(t), outbound(t, bridges.KindMessage, sender, "Bob", "again", "k-av-3")); err != nil {
		t.Fatal(err)
	}
	if n := av.count(path); n != 1 {
		t.Errorf("after restart %s fetched %d times, want still 1", path, n)
	}
	if again, err := r.human.GetAvatarURL(ctxT(t), ghost); err != nil || again != mxc {
		t.Errorf("avatar after restart = %q, %v; want %q", again, err, mxc)
	}

	// The endpoint fails for this author: the message goes through without an avatar,
	// and the next message does not try again before avatarRetry.
	for _, key := range []string{"k-av-bad-1", "k-av-bad-2"} {
		if _, err := r.c.Send(ctxT(t), outbound(t, bridges.KindMessage, "status:0xbad", "Eve", "no avatar", key)); err != nil {
			t.Fatalf("send without avatar: %v", err)
		}
	}
	if n := av.count("/identicons/status:0xbad"); n != 1 {
		t.Errorf("failing endpoint tried %d times, want 1 within avatarRetry", n)
	}
	bad := id.NewUserID(ghostLocalpart(DefaultGhostPrefix, "status:0xbad"), "localhost")
	if u, err := r.human.GetAvatarURL(ctxT(t), bad); err == nil && !u.IsEmpty() {
		t.Errorf("ghost of the failing author has avatar %q", u)
	}
}

// TestConnector_massagedTimestamp: a gateway event older than massageAfter (catch-up
// from the mailserver) is stored with its own time as origin_server_ts, so history
// lands in order; a fresh one gets the homeserver's time.
func TestConnector_massagedTimestamp(t *testing.T) {
	r := newRig(t)
	old := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	out := outbound(t, bridges.KindMessage, "status:0x04abcdef", "Bob", "from the archive", "k-ts-old")
	out.Event.Time = old
	rc, err := r.c.Send(ctxT(t), out)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := r.getEvent(ctxT(t), r.room, eventID("matrix", rc.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Timestamp != old.UnixMilli() {
		t.Errorf("origin_server_ts = %d (%s), want the event's time %d (%s)", ev.Timestamp,
			time.UnixMilli(ev.Timestamp).UTC(), old.UnixMilli(), old.UTC())
	}

	before := time.Now()
	fresh := outbound(t, bridges.KindMessage, "status:0x04abcdef", "Bob", "live", "k-ts-new")
	fresh.Event.Time = before.Add(-time.Second)
	rc, err = r.c.Send(ctxT(t), fresh)
	if err != nil {
		t.Fatal(err)
	}
	ev, err = r.getEvent(ctxT(t), r.room, eventID("matrix", rc.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ts := time.UnixMilli(ev.Timestamp); ts.Before(before.Add(-time.Millisecond)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("live message origin_server_ts = %s, want the homeserver's time (≥ %s)", ts, before)
	}
}

func TestMassagedTS(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &Connector{now: func() time.Time { return now }}
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Time{}, 0},
		{now, 0},
		{now.Add(-massageAfter + time.Millisecond), 0},
		{now.Add(time.Hour), 0},
		{time.Unix(0, 0), 0},
		{now.Add(-massageAfter), now.Add(-massageAfter).UnixMilli()},
		{now.Add(-24 * time.Hour), now.Add(-24 * time.Hour).UnixMilli()},
	} {
		if got := c.massagedTS(tc.t); got != tc.want {
			t.Errorf("massagedTS(%s) = %d, want %d", tc.t, got, tc.want)
		}
	}
}
