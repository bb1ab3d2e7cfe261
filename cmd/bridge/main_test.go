package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig_embeddedExample(t *testing.T) {
	c, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("embedded defaults: %+v", c)
	}
}

func TestLoadConfig_rejects(t *testing.T) {
	cases := map[string]string{
		"unknown key": "data_dirr: x\n",
		"bad level":   "log: {level: loud}\n",
		"bad format":  "log: {format: xml}\n",
		"not yaml":    "data_dir: [\n",
	}
	for name, body := range cases {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig(p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "bad level" && !strings.Contains(err.Error(), "log.level") {
			t.Errorf("%s: error does not name the key: %v", name, err)
		}
	}
}

func TestRun_commands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "statusgate ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), nil, &out, &errb); code != exitUsage {
		t.Errorf("no args: %d", code)
	}
	if code := run(context.Background(), []string{"nope"}, &out, &errb); code != exitUsage {
		t.Errorf("unknown command: %d", code)
	}
	dir := filepath.Join(t.TempDir(), "data")
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("data_dir: "+dir+"\n"), 0o600)
	errb.Reset()
	if code := run(context.Background(), []string{"run", "-config", p}, &out, &errb); code != exitOK {
		t.Fatalf("run: %d %s", code, errb.String())
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v", st, err)
	}
	if code := run(context.Background(), []string{"run", "-config", "/nonexistent.yaml"}, &out, &errb); code != exitConfig {
		t.Errorf("missing config: %d", code)
	}
}
