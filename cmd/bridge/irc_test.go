package main

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrstanley/girc"

	"github.com/statusgate/statusgate/test/ircd"
)

// TestRun_ircRoute runs the whole gateway with a route bridging #status to an IRC
// channel on a real ngircd and to the api connector: an api POST reaches the IRC
// channel as a relayed line, and an IRC user's line reaches the api's SSE stream.
func TestRun_ircRoute(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr := freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
        - channel: "libera:#status"
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
  irc:
    - name: libera
      server: `+srv.Addr()+`
      nick: statusgate
      channels:
        - name: "#status"
      flood_rate: 100
      flood_burst: 100
`)
	// The IRC user is there first.
	lines := make(chan string, 100)
	human := girc.New(girc.Config{Server: srv.Host(), Port: srv.Port(), Nick: "carol", User: "carol", Name: "carol", AllowFlood: true})
	joined := make(chan struct{})
	var once sync.Once
	human.Handlers.Add(girc.RPL_WELCOME, func(c *girc.Client, _ girc.Event) { c.Cmd.Join("#status") })
	human.Handlers.Add(girc.JOIN, func(c *girc.Client, e girc.Event) {
		if e.Source != nil && e.Source.Name == c.GetNick() {
			once.Do(func() { close(joined) })
		}
	})
	human.Handlers.Add(girc.PRIVMSG, func(_ *girc.Client, e girc.Event) { lines <- e.Source.Name + ": " + e.Last() })
	done := make(chan struct{})
	go func() { defer close(done); _ = human.Connect() }()
	t.Cleanup(func() { human.Close(); <-done })
	select {
	case <-joined:
	case <-time.After(10 * time.Second):
		t.Fatal("IRC user did not join")
	}

	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	events := r.events(t) // first, so that nothing is missed
	r.post(t, `{"user":"alice","name":"Alice","text":"hello **IRC**"}`)
	select {
	case l := <-lines:
		if l != "statusgate: <Alice> hello \x02IRC\x02" {
			t.Fatalf("IRC saw %q", l)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("nothing reached IRC\n%s", r.logs)
	}

	human.Cmd.Message("#status", "hi from IRC")
	ev := r.nextEvent(t, events, 15*time.Second)
	if sender, _ := ev["sender"].(map[string]any); ev["text"] != "hi from IRC" || sender["name"] != "carol" {
		t.Fatalf("SSE got %v", ev)
	}
	r.stop(t)
}

func TestLoadConfig_ircRejects(t *testing.T) {
	p := writeConfig(t, `data_dir: `+t.TempDir()+`
gateway:
  routes:
    - chat: status
      channels:
        - channel: "libera:#status"
        - channel: "oftc:#status"
connectors:
  irc:
    - name: libera
      nick: statusgate
      channels: [{name: "#status"}]
    - name: libera
      server: irc.example.org:6697
      nick: "bad nick"
      channels: [{name: "#status"}]
`)
	_, err := loadConfig(p)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"connectors.irc[0]", "server", `connectors.irc[1].name: "libera" is also connectors.irc[0]`,
		"connectors.irc[1]", "nick", `no enabled connector for network "oftc"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestLoadConfig_ircPuppets: ghosts (per-user IRC connections) are read from their key,
// and from puppets, their former name, with a deprecation.
func TestLoadConfig_ircPuppets(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `data_dir: `+t.TempDir()+`
gateway:
  routes:
    - chat: status
      channels: [{channel: "libera:#status"}]
connectors:
  irc:
    - name: libera
      server: irc.example.org:6697
      tls: true
      nick: statusgate
      channels: [{name: "#status", key: sesame}]
      puppets: {enabled: true, max: 3, idle_timeout: 10m, nick_suffix: "|s"}
`))
	if err != nil {
		t.Fatal(err)
	}
	ic := c.Connectors.IRC[0]
	if ic.Puppets == nil || !ic.Puppets.Enabled || ic.Puppets.Max != 3 || ic.Puppets.IdleTimeout != 10*time.Minute || ic.Puppets.NickSuffix != "|s" ||
		!ic.TLS || ic.Channels[0].Key != "sesame" {
		t.Fatalf("irc config %+v", ic)
	}
	if d := c.deprecations(); len(d) != 1 || !strings.HasPrefix(d[0], "connectors.irc[0].puppets: renamed ghosts") {
		t.Errorf("deprecations %q", d)
	}
	c, err = loadConfig(writeConfig(t, `data_dir: `+t.TempDir()+`
gateway:
  routes:
    - chat: status
      channels: [{channel: "libera:#status"}]
connectors:
  irc:
    - name: libera
      server: irc.example.org:6697
      nick: statusgate
      channels: [{name: "#status"}]
      ghosts: {enabled: true, max: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Connectors.IRC[0].Ghosts; !g.Enabled || g.Max != 3 || len(c.deprecations()) != 0 {
		t.Fatalf("ghosts %+v, deprecations %q", g, c.deprecations())
	}
}
