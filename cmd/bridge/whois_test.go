package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
)

func runWhoisCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"whois"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

// TestWhois_found records two puppets of one remote user (two gateway accounts) in a
// SQLite store and looks them up by chat key, by display key and by network:user.
func TestWhois_found(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, "data_dir: "+dir+"\n")
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(dir, "statusgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := identity.GenerateSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	now := first
	reg := puppet.New(sec, st, func() time.Time { return now })
	key, rec, err := reg.Key(ctx, identity.PuppetID{Network: "matrix", Account: "bot", User: "@alice:example.org"}, "Alice\x1b[31m")
	if err != nil {
		t.Fatal(err)
	}
	now = first.Add(time.Hour)
	if _, _, err := reg.Key(ctx, identity.PuppetID{Network: "matrix", Account: "bot", User: "@alice:example.org"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Key(ctx, identity.PuppetID{Network: "matrix", Account: "appservice", User: "@alice:example.org"}, "Al"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	for _, q := range []string{rec.ChatKey, identity.DisplayKey(&key.PublicKey)} {
		code, out, errs := runWhoisCmd(t, "-config", p, q)
		if code != exitOK {
			t.Fatalf("whois %s: exit %d: %s", q, code, errs)
		}
		for _, want := range []string{
			"network      matrix\n", "account      bot\n", "user         @alice:example.org\n",
			"display name Alice\n", "chat key     " + rec.ChatKey + "\n",
			"display key  " + identity.DisplayKey(&key.PublicKey) + "\n",
			"alias        " + identity.NewNamer(nil).Name(&key.PublicKey) + "\n",
			"first seen   2024-05-01T12:00:00Z\n", "last seen    2024-05-01T13:00:00Z\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("whois %s: output lacks %q:\n%s", q, want, out)
			}
		}
		if strings.Contains(out, "\x1b") {
			t.Error("output holds an escape character from the display name")
		}
	}

	code, out, errs := runWhoisCmd(t, "-config", p, "matrix:@alice:example.org")
	if code != exitOK {
		t.Fatalf("whois network:user: exit %d: %s", code, errs)
	}
	recs := strings.Split(out, "\n\n")
	if len(recs) != 2 || !strings.Contains(recs[0], "account      appservice\n") || !strings.Contains(recs[1], "account      bot\n") {
		t.Errorf("whois network:user: want the appservice and bot records, in that order:\n%s", out)
	}
}

func TestWhois_notFoundAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, "data_dir: "+dir+"\n")
	// No store yet: none found, and no database created.
	code, _, errs := runWhoisCmd(t, "-config", p, "matrix:@bob:example.org")
	if code != exitFail || !strings.Contains(errs, "no puppet for matrix:@bob:example.org") {
		t.Errorf("no store: exit %d: %s", code, errs)
	}
	if ok, _ := exists(filepath.Join(dir, "statusgate.db")); ok {
		t.Error("whois created the store")
	}
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "statusgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, _, errs = runWhoisCmd(t, "-config", p, "matrix:@bob:example.org")
	if code != exitFail || !strings.Contains(errs, "no puppet for matrix:@bob:example.org") {
		t.Errorf("unknown user: exit %d: %s", code, errs)
	}
	k := "0x04" + strings.Repeat("00", 64)
	if code, _, _ := runWhoisCmd(t, "-config", p, k); code != exitUsage {
		t.Errorf("invalid chat key: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runWhoisCmd(t, "-config", p); code != exitUsage {
		t.Errorf("no query: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runWhoisCmd(t, "-config", p, "a:b", "c:d"); code != exitUsage {
		t.Errorf("two queries: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runWhoisCmd(t, "-config", "/nonexistent.yaml", "a:b"); code != exitConfig {
		t.Errorf("missing config: exit %d, want %d", code, exitConfig)
	}
}
