package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func runCheckConfigCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"check-config"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

// cleanDataDir returns a data dir holding every key file of a configuration with that
// data dir and the API connector enabled, created by bridge init -keys.
func cleanDataDir(t *testing.T) (dir, header string) {
	t.Helper()
	dir = t.TempDir()
	header = "data_dir: " + dir + "\nconnectors: {api: {enabled: true}}\n"
	if code, _, errs := runInitCmd(t, "-keys", "-config", writeConfig(t, header)); code != exitOK {
		t.Fatalf("init -keys: exit %d: %s", code, errs)
	}
	return dir, header
}

func goodEnode(t *testing.T) string {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), 30303, 30303).URLv4()
}

func TestCheckConfig_clean(t *testing.T) {
	_, header := cleanDataDir(t)
	p := writeConfig(t, header+"node:\n  static_peers:\n    - "+goodEnode(t)+"\n")
	code, out, errs := runCheckConfigCmd(t, "-config", p)
	if code != exitOK || out != p+": ok\n" || errs != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// checkLines runs check-config on body (after the header of cleanDataDir) and checks
// that its output holds exactly the wanted lines, FILE prefixed.
// checkConfigOK runs check-config on body and checks that it reports the file ok.
func checkConfigOK(t *testing.T, body string) {
	t.Helper()
	p := writeConfig(t, body)
	if code, out, errs := runCheckConfigCmd(t, "-config", p); code != exitOK || out != p+": ok\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func checkLines(t *testing.T, body string, want ...string) []string {
	t.Helper()
	p := writeConfig(t, body)
	code, out, errs := runCheckConfigCmd(t, "-config", p)
	if code != exitConfig {
		t.Errorf("exit %d, want %d; stderr %q", code, exitConfig, errs)
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Errorf("%d lines, want %d:\n%s", len(got), len(want), out)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, p+":"+w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line starting %q in:\n%s", p+":"+w, out)
		}
	}
	return got
}

func TestCheckConfig_unknownKey(t *testing.T) {
	_, header := cleanDataDir(t)
	checkLines(t, header+"log:\n  level: info\n\nnode:\n  max_peers: 3\n  listen: x\n",
		"8: node.listen: unknown key")
}

func TestCheckConfig_badEnode(t *testing.T) {
	_, header := cleanDataDir(t)
	checkLines(t, header+"node:\n  static_peers:\n    - "+goodEnode(t)+"\n    - enode://nope@1.2.3.4:1\n",
		"6: node.static_peers[1]: ")
}

func TestCheckConfig_syntaxError(t *testing.T) {
	checkLines(t, "data_dir: x\nlog: [\n", "2: did not find expected node content")
}

func TestCheckConfig_missingSecret(t *testing.T) {
	dir, header := cleanDataDir(t)
	if err := os.Remove(filepath.Join(dir, "gateway.secret")); err != nil {
		t.Fatal(err)
	}
	// No gateway section: the problem is reported without a line.
	checkLines(t, header, " gateway.secret_file: gateway secret "+filepath.Join(dir, "gateway.secret")+": missing; run `bridge init -keys`")
	// With one, at the gateway key.
	checkLines(t, header+"\ngateway:\n  no_nick: true\n", "4: gateway.secret_file: ")
}

func TestCheckConfig_exposedKeyFile(t *testing.T) {
	dir, header := cleanDataDir(t)
	key := filepath.Join(dir, "nodekey")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	checkLines(t, header+"node:\n  key_file: "+key+"\n", "4: node.key_file: node key "+key+": mode -rw-r--r-- is readable by others; chmod 600 it")
}

// TestCheckConfig_everyProblem checks that problems of every kind are all reported at
// once: unknown keys and bad values (all of yaml's), invalid settings and key files.
func TestCheckConfig_everyProblem(t *testing.T) {
	dir, header := cleanDataDir(t)
	if err := os.Remove(filepath.Join(dir, "api.token")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "gateway.secret"), 0o604); err != nil {
		t.Fatal(err)
	}
	body := header + `log:
  level: loud
  colour: true
node:
  static_peers: [nope]
  max_peers: -2
gateway:
  retry_max: soon
  routes:
    - chat: status
      channels:
        - channel: "api:status"
        - channel: "irc:libera/#status"
          direction: sideways
mailserver:
  request_burst: -1
  enable: false
`
	lines := checkLines(t, body,
		"4: log.level: ",
		"5: log.colour: unknown key",
		"7: node.static_peers[0]: ",
		"8: node.max_peers: ",
		"10: gateway.retry_max: cannot unmarshal",
		"15: gateway.routes[0].channels[1].channel: no enabled connector for network \"irc\"",
		"16: gateway.routes[0].channels[1].direction: ",
		"18: mailserver.request_burst: ",
		"19: mailserver.enable: unknown key",
		"9: gateway.secret_file: ",
		"2: connectors.api.token_file: ",
	)
	for i := 1; i < len(lines); i++ {
		if lineNumber(lines[i-1]) > lineNumber(lines[i]) {
			t.Errorf("not in line order: %q before %q", lines[i-1], lines[i])
		}
	}
}

// lineNumber is the LINE of an output line "FILE:LINE: …".
func lineNumber(s string) int {
	_, rest, _ := strings.Cut(s, ".yaml:")
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ':')])
	return n
}

func TestCheckConfig_usage(t *testing.T) {
	if code, _, _ := runCheckConfigCmd(t, "extra"); code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
	if code, out, _ := runCheckConfigCmd(t, "-config", "/nonexistent.yaml"); code != exitConfig || !strings.Contains(out, "/nonexistent.yaml") {
		t.Errorf("missing file: exit %d: %s", code, out)
	}
}

// TestCheckConfig_reportsWhatRunRefuses runs every kind of start-time refusal through
// both bridge run and bridge check-config: whatever run refuses at start (the YAML,
// Config.Validate, the files it reads, and every constructor it calls), check-config
// reports under the same key.
func TestCheckConfig_reportsWhatRunRefuses(t *testing.T) {
	const routes = `gateway:
  routes:
    - chat: status
      channels: [{channel: "api:status"}]
`
	cases := []struct {
		name, body string
		setup      func(t *testing.T, dir string)
		key        string
	}{
		{"unknown key", "node: {listen: x}\n", nil, "node.listen"},
		{"public chat name", "gateway: {routes: [{chat: \"Bad Chat\", channels: [{channel: \"api:status\"}]}]}\n", nil,
			"gateway.routes[0].chat"},
		{"alias words", routes + "identity: {alias_words: /nonexistent/words}\n", nil, "identity.alias_words"},
		{"exposed node key", routes, func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, "nodekey"), 0o644) },
			"node.key_file"},
		{"missing secret", routes, func(t *testing.T, dir string) { remove(t, filepath.Join(dir, "gateway.secret")) },
			"gateway.secret_file"},
		{"missing token", routes, func(t *testing.T, dir string) { remove(t, filepath.Join(dir, "api.token")) },
			"connectors.api.token_file"},
		{"api without channels", `gateway: {routes: [{chat: status, channels: [{channel: "libera:#status"}]}]}
connectors: {irc: [{name: libera, server: "127.0.0.1:6667", nick: gate, channels: [{name: "#status"}]}]}
`, nil, "connectors.api.channels"},
		{"irc nick", routes + `connectors: {irc: [{name: libera, server: "127.0.0.1:6667", nick: "bad nick", channels: [{name: "#s"}]}]}
`, nil, "connectors.irc[0].nick"},
		{"slack token", routes + "connectors: {slack: [{bot_token: nope, app_token: xapp-1, channels: [C1]}]}\n", nil,
			"connectors.slack[0].bot_token"},
		{"matrix rooms", routes + `connectors: {matrix: [{homeserver_url: "http://127.0.0.1:8008", server_name: x.org, as_token: a, hs_token: b}]}
`, nil, "connectors.matrix[0].rooms"},
		{"reserved network", routes + `connectors: {irc: [{name: status, server: "127.0.0.1:6667", nick: gate, channels: [{name: "#s"}]}]}
`, nil, "connectors.irc[0].name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := cleanDataDir(t)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			// The api connector enabled; the node on a free port, should run ever start one.
			header := "data_dir: " + dir + "\nnode: {listen_addr: \"127.0.0.1:0\"}\n"
			body := tc.body
			if strings.HasPrefix(body, "node:") {
				header = "data_dir: " + dir + "\n"
			}
			if !strings.Contains(body, "connectors:") {
				body += "connectors: {api: {enabled: true, listen: \"127.0.0.1:0\"}}\n"
			} else {
				body = strings.Replace(body, "connectors: {", "connectors: {api: {enabled: true, listen: \"127.0.0.1:0\"}, ", 1)
			}
			p := writeConfig(t, header+body)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			if code := run(ctx, []string{"run", "-config", p}, nil, &out, &errb); code == exitOK || ctx.Err() != nil {
				t.Fatalf("bridge run did not refuse to start (exit %d):\n%s", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.key) {
				t.Fatalf("bridge run refused without naming %s:\n%s", tc.key, errb.String())
			}
			code, cout, _ := runCheckConfigCmd(t, "-config", p)
			if code != exitConfig || !strings.Contains(cout, ": "+tc.key+": ") {
				t.Errorf("check-config exit %d, no line for %s:\n%s\n(bridge run: %s)", code, tc.key, cout, errb.String())
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// TestCheckConfig_deprecatedKey: a key read under its former name is a warning at its
// line on stderr; the configuration is still ok.
func TestCheckConfig_deprecatedKey(t *testing.T) {
	dir, _ := cleanDataDir(t)
	p := writeConfig(t, "data_dir: "+dir+`
connectors:
  api: {enabled: true}
  irc:
    - name: libera
      server: irc.example.org:6697
      nick: statusgate
      channels: [{name: "#status"}]
      puppets: {enabled: true}
`)
	code, out, errs := runCheckConfigCmd(t, "-config", p)
	if code != exitOK || out != p+": ok\n" || !strings.HasPrefix(errs, p+":9: connectors.irc[0].puppets: deprecated: renamed ghosts") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
