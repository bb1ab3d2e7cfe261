package main

import (
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
)

// TestLoadConfig_outageDefaults checks that a file without node.outage_threshold and
// mailserver.gap_sync_interval, and the embedded config.example.yaml, which shows
// them, get the core packages' defaults, and that those reach the core configs.
func TestLoadConfig_outageDefaults(t *testing.T) {
	empty, err := loadConfig(writeConfig(t, "data_dir: "+t.TempDir()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Config{"no keys": empty, "config.example.yaml": example} {
		if got := c.Node.nodeConfig(nil).Whisper.OutageThreshold; got != whisper.DefaultOutageThreshold {
			t.Errorf("%s: whisper.Config.OutageThreshold %v, want %v", name, got, whisper.DefaultOutageThreshold)
		}
		if got := c.Mailserver.serverConfig(nil, nil).GapSyncInterval; got != mailserver.DefaultGapSyncInterval {
			t.Errorf("%s: mailserver.ServerConfig.GapSyncInterval %v, want %v", name, got, mailserver.DefaultGapSyncInterval)
		}
	}
}

func TestLoadConfig_outageSettings(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
node:
  outage_threshold: 3500ms
mailserver:
  gap_sync_interval: 90s
`))
	if err != nil {
		t.Fatal(err)
	}
	nc := c.Node.nodeConfig(nil)
	if nc.Whisper.OutageThreshold != 3500*time.Millisecond {
		t.Errorf("whisper.Config.OutageThreshold %v, want 3.5s", nc.Whisper.OutageThreshold)
	}
	if err := nc.Validate(); err != nil {
		t.Errorf("mapped node config: %v", err)
	}
	if got := c.Mailserver.serverConfig(nil, nil).GapSyncInterval; got != 90*time.Second {
		t.Errorf("mailserver.ServerConfig.GapSyncInterval %v, want 1m30s", got)
	}

	// The bounds themselves are accepted.
	for _, body := range []string{
		"node: {outage_threshold: 1s}\nmailserver: {gap_sync_interval: 10s}\n",
		"node: {outage_threshold: 15s}\nmailserver: {gap_sync_interval: 23h55m}\n",
		"mailserver: {sync_window_hours: 1, gap_sync_interval: 55m}\n",
	} {
		if _, err := loadConfig(writeConfig(t, body)); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestLoadConfig_outageRejects(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"threshold below the expiry cycle", "node: {outage_threshold: 999ms}\n",
			"node.outage_threshold: 999ms is not between 1s (the expiry cycle"},
		{"threshold above the chat TTL", "node: {outage_threshold: 16s}\n",
			"node.outage_threshold: 16s is not between 1s (the expiry cycle: shorter, tick jitter and a redial count as outages) and 15s (the TTL of Status chat messages"},
		{"negative threshold", "node: {outage_threshold: -10s}\n", "node.outage_threshold: -10s is not between"},
		{"bad threshold", "node: {outage_threshold: soon}\n", "outage_threshold"},
		{"integer threshold", "node: {outage_threshold: 10}\n", "time.Duration"},
		{"interval too short", "mailserver: {gap_sync_interval: 9s}\n", "mailserver.gap_sync_interval: 9s is less than 10s"},
		{"negative interval", "mailserver: {gap_sync_interval: -1m}\n", "mailserver.gap_sync_interval: -1m0s is less than 10s"},
		{"interval past the default window", "mailserver: {gap_sync_interval: 24h}\n",
			"mailserver.gap_sync_interval: 24h0m0s exceeds 23h55m0s, mailserver.sync_window_hours less the 5m0s sync margin"},
		{"interval past a short window", "mailserver: {sync_window_hours: 1, gap_sync_interval: 56m}\n",
			"mailserver.gap_sync_interval: 56m0s exceeds 55m0s"},
		{"bad interval", "mailserver: {gap_sync_interval: hourly}\n", "gap_sync_interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not contain %q: %v", tc.want, err)
			}
		})
	}
}

// TestCheckConfig_outageKeys checks that check-config reports a bad value of either key
// at its line, and a bad window once, as sync_window_hours.
func TestCheckConfig_outageKeys(t *testing.T) {
	_, header := cleanDataDir(t)
	checkLines(t, header+"node:\n  outage_threshold: 20s\nmailserver:\n  gap_sync_interval: 5s\n",
		"4: node.outage_threshold: 20s is not between 1s",
		"6: mailserver.gap_sync_interval: 5s is less than 10s")
	checkLines(t, header+"mailserver:\n  sync_window_hours: -1\n  gap_sync_interval: 2h\n",
		"4: mailserver.sync_window_hours: ")
}
