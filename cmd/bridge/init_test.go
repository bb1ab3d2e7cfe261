package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/core/node"
)

// runInitCmd runs `bridge init args…` and returns the exit code and both outputs.
func runInitCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"init"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

func checkMode0600(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
	}
}

func TestInit_freshAndAgain(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // the example's data_dir, ./data, is relative to the working directory

	code, out, errs := runInitCmd(t)
	if code != exitOK {
		t.Fatalf("init: exit %d: %s", code, errs)
	}
	cfgFile := filepath.Join(dir, "statusgate.yaml")
	b, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, statusgate.ExampleConfig()) {
		t.Error("statusgate.yaml differs from the embedded config.example.yaml")
	}
	cfg, err := loadConfig(cfgFile)
	if err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
	if cfg.Gateway.SecretFile != filepath.Join("data", "gateway.secret") {
		t.Errorf("gateway.secret_file default %q", cfg.Gateway.SecretFile)
	}
	if st, err := os.Stat(filepath.Join(dir, "data")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v", st, err)
	}
	keyFile := filepath.Join(dir, "data", "nodekey")
	secretFile := filepath.Join(dir, "data", "gateway.secret")
	tokenFile := filepath.Join(dir, "data", "api.token")
	checkMode0600(t, keyFile)
	checkMode0600(t, secretFile)
	checkMode0600(t, tokenFile)
	token, err := loadToken(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errs, token) {
		t.Error("init printed the api token")
	}
	tokenRaw, _ := os.ReadFile(tokenFile)

	raw, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	hexSecret := strings.TrimSpace(string(raw))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hexSecret) {
		t.Errorf("secret file is not 64 hex characters (%d bytes)", len(hexSecret))
	}
	sec, err := loadSecret(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Hex() != hexSecret {
		t.Error("loadSecret gives a different secret")
	}
	if strings.Contains(out+errs, hexSecret) {
		t.Error("init printed the secret")
	}
	key, err := node.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if id := enode.PubkeyToIDV4(&key.PublicKey).String(); !strings.Contains(out, id) {
		t.Errorf("output lacks the node ID %s:\n%s", id, out)
	}
	for _, want := range []string{"statusgate.yaml", keyFileRel, secretRel, filepath.Join("data", "api.token")} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %s:\n%s", want, out)
		}
	}

	// Again, without -force: refused, nothing touched.
	if err := os.WriteFile(cfgFile, []byte("# edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runInitCmd(t)
	if code != exitFail {
		t.Errorf("second init: exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(errs, "-force") || !strings.Contains(errs, "never overwritten") {
		t.Errorf("refusal does not explain -force and the secret: %s", errs)
	}
	if b, _ := os.ReadFile(cfgFile); string(b) != "# edited\n" {
		t.Error("refused init changed the config")
	}

	// With -force: the config is rewritten, the secret and node key are kept.
	keyRaw, _ := os.ReadFile(keyFile)
	code, out, errs = runInitCmd(t, "-force")
	if code != exitOK {
		t.Fatalf("init -force: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(cfgFile); !bytes.Equal(b, statusgate.ExampleConfig()) {
		t.Error("init -force did not rewrite the config")
	}
	if b, _ := os.ReadFile(secretFile); !bytes.Equal(b, raw) {
		t.Error("init -force changed the gateway secret")
	}
	if b, _ := os.ReadFile(keyFile); !bytes.Equal(b, keyRaw) {
		t.Error("init -force changed the node key")
	}
	if b, _ := os.ReadFile(tokenFile); !bytes.Equal(b, tokenRaw) {
		t.Error("init -force changed the api token")
	}
	if !strings.Contains(out, "kept") || strings.Contains(out+errs, hexSecret) {
		t.Errorf("init -force output:\n%s", out)
	}

	// An exposed secret is refused before anything is written, even with -force.
	if err := os.Chmod(secretFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte("# edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runInitCmd(t, "-force")
	if code != exitFail || !strings.Contains(errs, "chmod 600") {
		t.Errorf("init -force with a 0644 secret: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(cfgFile); string(b) != "# edited\n" {
		t.Error("init -force rewrote the config although the secret was refused")
	}
}

var (
	keyFileRel = filepath.Join("data", "nodekey")
	secretRel  = filepath.Join("data", "gateway.secret")
)

func TestInit_configFlag(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, "data_dir: "+dir+"\ngateway: {secret_file: "+filepath.Join(dir, "s", "g.secret")+"}\n")
	code, out, errs := runInitCmd(t, "-config", p)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	checkMode0600(t, filepath.Join(dir, "nodekey"))
	checkMode0600(t, filepath.Join(dir, "s", "g.secret"))
	if strings.Contains(out, "configuration") {
		t.Errorf("init -config wrote a configuration:\n%s", out)
	}
	if code, _, _ := runInitCmd(t, "-config", p, "-out", filepath.Join(dir, "x.yaml")); code != exitUsage {
		t.Errorf("-config with -out: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runInitCmd(t, "extra"); code != exitUsage {
		t.Errorf("extra argument: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := runInitCmd(t, "-config", "/nonexistent.yaml"); code != exitConfig {
		t.Errorf("missing config: exit %d, want %d", code, exitConfig)
	}
}

func TestLoadSecret_refuses(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("ab", 32)
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
			t.Fatal(err)
		}
		return p
	}

	if sec, err := loadSecret(write("ok", "  "+good+"\n", 0o600)); err != nil || sec.Hex() != good {
		t.Errorf("good secret: %v", err)
	}

	p := write("open", good+"\n", 0o644)
	_, err := loadSecret(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "-rw-r--r--") ||
		!strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 secret: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), good) {
		t.Error("error quotes the secret")
	}

	_, err = loadSecret(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), "bridge init") {
		t.Errorf("missing secret: %v", err)
	}

	for name, body := range map[string]string{
		"garbage": "not a secret at all\n",
		"short":   strings.Repeat("ab", 8) + "\n",
		"empty":   "",
	} {
		if _, err := loadSecret(write(name, body, 0o600)); err == nil {
			t.Errorf("%s secret accepted", name)
		} else if strings.Contains(err.Error(), strings.TrimSpace(body)) && body != "" {
			t.Errorf("%s: error quotes the file: %v", name, err)
		}
	}
}

func TestLoadConfig_gatewaySecretFile(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "gateway: {secret_file: /x/s}\n"))
	if err != nil || c.Gateway.SecretFile != "/x/s" {
		t.Errorf("secret_file: %v %+v", err, c)
	}
	for body, key := range map[string]string{
		"gateway: {secret_file: ' '}\n": "gateway.secret_file",
		"gateway: {secret: x}\n":        "secret",
	} {
		if _, err := loadConfig(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestInit_keys(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "t", "api.token")
	p := writeConfig(t, "data_dir: "+dir+"\nconnectors: {api: {token_file: "+token+"}}\n")
	files := []string{filepath.Join(dir, "nodekey"), filepath.Join(dir, "gateway.secret"), token}

	code, out, errs := runInitCmd(t, "-keys", "-config", p)
	if code != exitOK {
		t.Fatalf("init -keys: exit %d: %s", code, errs)
	}
	before := map[string][]byte{}
	for _, f := range files {
		checkMode0600(t, f)
		if !strings.Contains(out, f) {
			t.Errorf("output does not mention %s:\n%s", f, out)
		}
		before[f], _ = os.ReadFile(f)
	}
	if _, err := loadSecret(files[1]); err != nil {
		t.Error(err)
	}
	if tok, err := loadToken(token); err != nil || strings.Contains(out, tok) {
		t.Errorf("token: %v (printed: %v)", err, strings.Contains(out, tok))
	}
	if _, err := os.Stat(filepath.Join(dir, "statusgate.yaml")); err == nil {
		t.Error("init -keys wrote a configuration")
	}

	// All present: nothing to do, nothing said, nothing changed.
	code, out, errs = runInitCmd(t, "-keys", "-config", p)
	if code != exitOK || out != "" {
		t.Errorf("second init -keys: exit %d, output %q: %s", code, out, errs)
	}
	// One missing: only it is created.
	if err := os.Remove(token); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runInitCmd(t, "-keys", "-config", p)
	if code != exitOK || !strings.Contains(out, token) || strings.Contains(out, files[0]) || strings.Contains(out, files[1]) {
		t.Errorf("init -keys, token missing: exit %d:\n%s%s", code, out, errs)
	}
	for _, f := range files[:2] {
		if b, _ := os.ReadFile(f); !bytes.Equal(b, before[f]) {
			t.Errorf("init -keys changed %s", f)
		}
	}

	for _, args := range [][]string{{"-keys", "-out", filepath.Join(dir, "x.yaml")}, {"-keys", "-force"}} {
		if code, _, _ := runInitCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestInit_keysEmbedded runs init -keys on the embedded configuration in a fresh
// directory, as make run does, and checks that check-config is then clean.
func TestInit_keysEmbedded(t *testing.T) {
	t.Chdir(t.TempDir())
	if code, _, errs := runInitCmd(t, "-keys"); code != exitOK {
		t.Fatalf("init -keys: exit %d: %s", code, errs)
	}
	for _, f := range []string{keyFileRel, secretRel, filepath.Join("data", "api.token")} {
		checkMode0600(t, f)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config"}, nil, &out, &errb); code != exitOK {
		t.Errorf("check-config after init -keys: exit %d:\n%s%s", code, out.String(), errb.String())
	}
}
