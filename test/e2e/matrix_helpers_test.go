package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/test/homeserver"
)

// The Matrix side of the Matrix tests' route: chat "status" of network "matrix", whose
// portal room the connector creates as #status_status:localhost.
const (
	// restartTimeout bounds the Matrix restart test's wait for the messages sent while
	// the bridge was down: Dendrite retries an unreachable appservice after 2, 4, 8, 16
	// and 32 s, so a delivery is due within ~62 s of the first failure.
	restartTimeout = 90 * time.Second

	matrixNetwork = "matrix"
	matrixChat    = "status"
	matrixAlias   = "#status_" + matrixChat + ":" + homeserver.ServerName
)

// matrixConfig is the gateway's generated configuration with matrix:status added to
// the route and a connectors.matrix section: the appservice listening on asAddr, the
// homeserver at hsURL, tokens (empty before generate-registration made them) and ghost
// avatars from the gateway's own /identicons/.
func matrixConfig(t *testing.T, g *gateway, opts gatewayOptions, asAddr, hsURL, asToken, hsToken string) string {
	t.Helper()
	base := g.config(freeAddr(t), opts)
	route := "        - channel: \"api:status\"\n"
	if !strings.Contains(base, route) {
		t.Fatalf("generated config has no %q:\n%s", route, base)
	}
	base = strings.Replace(base, route, route+"        - channel: \""+matrixNetwork+":"+matrixChat+"\"\n", 1)
	s := base + "  matrix:\n" +
		"    - homeserver_url: " + strconv.Quote(hsURL) + "\n" +
		"      server_name: " + homeserver.ServerName + "\n" +
		"      listen: " + strconv.Quote(asAddr) + "\n" +
		"      avatar_url_base: " + strconv.Quote("http://"+g.httpAddr+"/identicons/") + "\n"
	if asToken != "" {
		s += "      as_token: " + strconv.Quote(asToken) + "\n      hs_token: " + strconv.Quote(hsToken) + "\n"
	}
	return s
}

// startMatrix runs `bridge generate-registration` on the gateway's config, starts
// Dendrite with the registration it wrote and rewrites the config with the
// homeserver's URL and the generated tokens. The gateway is not started.
func startMatrix(t *testing.T, g *gateway, opts gatewayOptions) *homeserver.Server {
	t.Helper()
	asAddr := freeAddr(t)
	writeFile(t, g.cfgPath, matrixConfig(t, g, opts, asAddr, "http://127.0.0.1:1", "", ""))
	reg := g.dir + "/registration.yaml"
	out, code := runBridge(t, "generate-registration", "-config", g.cfgPath, "-out", reg)
	if code != 0 {
		t.Fatalf("bridge generate-registration: exit %d\n%s", code, out)
	}
	toks := regexp.MustCompile(`as_token: ([0-9a-f]+)\s+hs_token: ([0-9a-f]+)`).FindStringSubmatch(out)
	if toks == nil {
		t.Fatalf("generate-registration printed no tokens:\n%s", out)
	}
	regYAML, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	hs := homeserver.Start(t, homeserver.Options{Registrations: [][]byte{regYAML}})
	writeFile(t, g.cfgPath, matrixConfig(t, g, opts, asAddr, hs.URL(), toks[1], toks[2]))
	return hs
}

// matrixGhost is the ghost user of a sender ID, as bridges/matrix/id.go specifies it:
// @status_<hex of the first 16 bytes of SHA-256("statusgate-ghost-v1:" + id)>.
func matrixGhost(senderID string) id.UserID {
	sum := sha256.Sum256([]byte("statusgate-ghost-v1:" + senderID))
	return id.NewUserID("status_"+hex.EncodeToString(sum[:16]), homeserver.ServerName)
}

// matrixHuman is a real Matrix account in the portal room.
type matrixHuman struct {
	c    *mautrix.Client
	room id.RoomID
}

// joinPortal registers localpart with display name name and joins the portal room.
func joinPortal(t *testing.T, hs *homeserver.Server, localpart, name string) *matrixHuman {
	t.Helper()
	c := hs.RegisterUser(t, localpart)
	ctx := ctxTimeout(t, 15*time.Second)
	if err := c.SetDisplayName(ctx, name); err != nil {
		t.Fatal(err)
	}
	res, err := c.ResolveAlias(ctx, id.RoomAlias(matrixAlias))
	if err != nil {
		t.Fatalf("resolve the portal %s: %v", matrixAlias, err)
	}
	if _, err := c.JoinRoomByID(ctx, res.RoomID); err != nil {
		t.Fatalf("join the portal: %v", err)
	}
	return &matrixHuman{c: c, room: res.RoomID}
}

// waitMessage polls the room's latest messages until one matches, failing t after
// timeout. (The client API gives no push without a sync loop; /messages is polled.)
func (h *matrixHuman) waitMessage(t *testing.T, g *gateway, timeout time.Duration, what string, match func(*event.Event, *event.MessageEventContent) bool) *event.Event {
	t.Helper()
	var got *event.Event
	ok := g.poll(t, timeout, func() bool {
		resp, err := h.c.Messages(ctxTimeout(t, 5*time.Second), h.room, "", "", mautrix.DirectionBackward, nil, 50)
		if err != nil {
			return false
		}
		for _, ev := range resp.Chunk {
			if ev.Type != event.EventMessage {
				continue
			}
			_ = ev.Content.ParseRaw(ev.Type)
			if match(ev, ev.Content.AsMessage()) {
				got = ev
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("the portal room shows no %s within %v", what, timeout)
	}
	return got
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
