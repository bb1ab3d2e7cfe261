package main

import (
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
	checkAccepts(t,
		"node: {outage_threshold: 1s}\nmailserver: {gap_sync_interval: 10s}\n",
		"node: {outage_threshold: 15s}\nmailserver: {gap_sync_interval: 23h55m}\n",
		"mailserver: {sync_window_hours: 1, gap_sync_interval: 55m}\n",
	)
}

func TestLoadConfig_outageRejects(t *testing.T) {
	cases := []rejectCase{
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
			"mailserver.gap_sync_interval: 24h0m0s exceeds 23h55m0s, mailserver.sync_window_hours less mailserver.sync_margin (5m0s)"},
		{"interval past a short window", "mailserver: {sync_window_hours: 1, gap_sync_interval: 56m}\n",
			"mailserver.gap_sync_interval: 56m0s exceeds 55m0s"},
		{"bad interval", "mailserver: {gap_sync_interval: hourly}\n", "gap_sync_interval"},
	}
	checkRejects(t, cases)
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

// TestLoadConfig_marginDefaults checks that a file without node.catch_up_margin and
// mailserver.sync_margin, and the embedded config.example.yaml, which shows them, get
// today's 5 min (the core packages' defaults), and that those reach the core configs.
func TestLoadConfig_marginDefaults(t *testing.T) {
	empty, err := loadConfig(writeConfig(t, "data_dir: "+t.TempDir()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Config{"no keys": empty, "config.example.yaml": example} {
		if got := c.Node.catchUp(nil, nil, nil).OutageMargin; got != 5*time.Minute {
			t.Errorf("%s: status.HistoryConfig.OutageMargin %v, want 5m", name, got)
		}
		if got := c.Mailserver.serverConfig(nil, nil).SyncMargin; got != 5*time.Minute {
			t.Errorf("%s: mailserver.ServerConfig.SyncMargin %v, want 5m", name, got)
		}
	}
}

func TestLoadConfig_marginSettings(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
node:
  catch_up_margin: 90s
mailserver:
  sync_margin: 2m30s
  gap_sync_interval: 1h
  sync_window_hours: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Node.catchUp(nil, nil, nil).OutageMargin; got != 90*time.Second {
		t.Errorf("status.HistoryConfig.OutageMargin %v, want 1m30s", got)
	}
	sc := c.Mailserver.serverConfig(nil, nil)
	if sc.SyncMargin != 150*time.Second {
		t.Errorf("mailserver.ServerConfig.SyncMargin %v, want 2m30s", sc.SyncMargin)
	}

	// The bounds themselves are accepted: 55 s at least; the catch-up margin below the
	// 24 h history window; the sync margin below the sync window, leaving
	// gap_sync_interval.
	checkAccepts(t,
		"node: {catch_up_margin: 55s}\nmailserver: {sync_margin: 55s}\n",
		"node: {catch_up_margin: 23h59m59s}\nmailserver: {sync_margin: 23h59m, gap_sync_interval: 1m}\n",
		"mailserver: {sync_window_hours: 1, sync_margin: 59m50s, gap_sync_interval: 10s}\n",
	)
}

func TestLoadConfig_marginRejects(t *testing.T) {
	cases := []rejectCase{
		{"catch-up margin below the floor", "node: {catch_up_margin: 54s}\n",
			"node.catch_up_margin: 54s is less than 55s (a dead link is dropped 30 s late, and a Status message arrives up to its 15 s TTL"},
		{"negative catch-up margin", "node: {catch_up_margin: -5m}\n", "node.catch_up_margin: -5m0s is less than 55s"},
		{"catch-up margin of the whole window", "node: {catch_up_margin: 24h}\n",
			"node.catch_up_margin: 24h0m0s is not less than 24h0m0s, the chats' history window"},
		{"integer catch-up margin", "node: {catch_up_margin: 300}\n", "time.Duration"},
		{"bad catch-up margin", "node: {catch_up_margin: a while}\n", "catch_up_margin"},
		{"sync margin below the floor", "mailserver: {sync_margin: 30s}\n",
			"mailserver.sync_margin: 30s is less than 55s (a dead link is dropped 30 s late"},
		{"sync margin of the whole window", "mailserver: {sync_window_hours: 1, sync_margin: 1h}\n",
			"mailserver.sync_margin: 1h0m0s is not less than 1h0m0s, mailserver.sync_window_hours"},
		{"interval past the window less a long margin", "mailserver: {sync_window_hours: 1, sync_margin: 50m, gap_sync_interval: 11m}\n",
			"mailserver.gap_sync_interval: 11m0s exceeds 10m0s, mailserver.sync_window_hours less mailserver.sync_margin (50m0s)"},
		{"bad sync margin", "mailserver: {sync_margin: later}\n", "sync_margin"},
	}
	checkRejects(t, cases)
}

// TestCheckConfig_marginKeys checks that check-config accepts the margins at their
// defaults and reports a bad one at its line; a margin that leaves no room for the
// interval is reported once, at gap_sync_interval, and a bad margin alone at its own key.
func TestCheckConfig_marginKeys(t *testing.T) {
	_, header := cleanDataDir(t)
	checkConfigOK(t, header+"node:\n  catch_up_margin: 5m\nmailserver:\n  sync_margin: 5m\n")
	checkLines(t, header+"node:\n  catch_up_margin: 10s\nmailserver:\n  sync_margin: 48h\n",
		"4: node.catch_up_margin: 10s is less than 55s",
		"6: mailserver.sync_margin: 48h0m0s is not less than 24h0m0s")
	checkLines(t, header+"mailserver:\n  sync_window_hours: 1\n  sync_margin: 55m\n  gap_sync_interval: 6m\n",
		"6: mailserver.gap_sync_interval: 6m0s exceeds 5m0s")
}
