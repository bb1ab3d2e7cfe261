package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/slackfake"
)

const slackChannel = "C0STATUS"

// slackConfig is the gateway's generated configuration with the Slack channel added to
// the route and connectors.slack pointing at the fake (Slack cannot run here;
// test/slackfake says what it models).
func slackConfig(t *testing.T, g *gateway, opts gatewayOptions, fake *slackfake.Server) string {
	t.Helper()
	base := g.config(freeAddr(t), opts)
	route := "        - channel: \"api:status\"\n"
	if !strings.Contains(base, route) {
		t.Fatalf("generated config has no %q:\n%s", route, base)
	}
	base = strings.Replace(base, route, route+"        - channel: \"slack:"+slackChannel+"\"\n", 1)
	return base + "  slack:\n" +
		"    - bot_token: " + strconv.Quote(slackfake.BotToken) + "\n" +
		"      app_token: " + strconv.Quote(slackfake.AppToken) + "\n" +
		"      api_url: " + strconv.Quote(fake.APIURL()) + "\n" +
		"      channels: [" + slackChannel + "]\n" +
		"      icon_url_base: \"https://bridge.example.org/identicons/\"\n" +
		"      rate_per_channel: 100\n      burst: 100\n"
}

// TestE2E_statusSlack runs the bridge binary between #status on the reference Status
// node and a Slack channel: a Status message is posted in Slack under the author's
// alias with their identicon URL; a Slack user's message, a thread reply to the bridged
// message and a /me reach Status signed by the Slack user's puppet key.
func TestE2E_statusSlack(t *testing.T) {
	t.Parallel()
	fake := slackfake.New(t, slackChannel)
	fake.AddUser("U0DAVE", "Dave")
	sp := startStatusPeer(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}}
	g := newGateway(t, opts)
	writeFile(t, g.cfgPath, slackConfig(t, g, opts, fake))
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	// Status → Slack.
	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	name := identity.NewNamer(nil).Name(&bob.PublicKey)
	hello := encodeStatus(t, bob, "hello *Slack*", chat.FormatProtobuf)
	helloID, err := chat.MessageID(&bob.PublicKey, hello)
	if err != nil {
		t.Fatal(err)
	}
	sp.post(t, bob, hello)
	var posted slackfake.Message
	if !g.poll(t, msgTimeout, func() bool {
		for _, m := range fake.History(slackChannel) {
			if m.BotID != "" && m.Text == "hello _Slack_" {
				posted = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("nothing reached Slack: %+v", fake.History(slackChannel))
	}
	wantIcon := "https://bridge.example.org/identicons/status:" + identity.ChatKey(&bob.PublicKey)
	if posted.Username != name || posted.IconURL != wantIcon {
		t.Errorf("Slack post as %q with icon %q; want %q, %q", posted.Username, posted.IconURL, name, wantIcon)
	}

	// Slack → Status, as the puppet of the Slack user (team/user).
	puppet, err := g.secret(t).PuppetKey(identity.PuppetID{Network: "slack", Account: "slack", User: slackfake.TeamID + "/U0DAVE"})
	if err != nil {
		t.Fatal(err)
	}
	fake.Post(slackChannel, "U0DAVE", "hi from *Slack*", "")
	fake.Post(slackChannel, "U0DAVE", "a thread answer", posted.TS)
	fake.MeMessage(slackChannel, "U0DAVE", "waves")
	for _, text := range []string{"[slack] <Dave> hi from **Slack**", "[slack] <Dave> a thread answer", "* Dave waves"} {
		got := sp.waitFor(t, msgTimeout, fmt.Sprintf("%q", text), func(ms []statusMsg) bool { return len(withText(ms, text)) > 0 })
		for _, m := range withText(got, text) {
			if !m.signedBy(&puppet.PublicKey) {
				t.Errorf("%q signed by %x; want Dave's puppet key", text, m.Signer)
			}
			// The thread answer is a Status reply to bob's message, by its real id.
			if strings.Contains(text, "thread") && m.ResponseTo != helloID.String() {
				t.Errorf("%q (%v) answers %q, want bob's message %s", text, m.Format, m.ResponseTo, helloID)
			}
		}
	}
}
