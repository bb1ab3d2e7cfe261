// Package homeserver runs a real Matrix homeserver (Dendrite v0.15.2, TEST-SERVERS.md
// §1a) on 127.0.0.1 for tests: Start writes dendrite.yaml (generate-config -ci) and an
// appservice registration into a temporary directory, starts Dendrite on a free port,
// waits until /_matrix/client/versions answers and stops it in t.Cleanup. Restart stops
// it and starts it again on the same port and data, for reconnect tests; Stop and
// Resume do the same with a gap in between. RegisterUser
// creates a human account (m.login.dummy) and returns a logged-in mautrix.Client.
//
// The Dendrite binaries are built from the pinned module on first use and cached by
// version outside the repository (see BinDir), under an exclusive file lock, so parallel
// test binaries build once. A cold build takes about 150 s; later runs reuse the cache.
//
// It must not be imported by non-test code. A failed build fails the test; it never
// skips silently.
package homeserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/test/buildonce"
	"github.com/statusgate/statusgate/test/freeport"
)

// Version is the pinned Dendrite release (module github.com/element-hq/dendrite).
const Version = "v0.15.2"

// ServerName is the server name of every test homeserver.
const ServerName = "localhost"

// readyTimeout bounds the wait for /_matrix/client/versions after a start.
const readyTimeout = 30 * time.Second

// BinDir returns the directory holding the cached Dendrite binaries:
// $STATUSGATE_DENDRITE_DIR if set, else <user cache dir>/statusgate/dendrite-<Version>
// (~/.cache/statusgate/dendrite-v0.15.2 on Linux). It is outside the repository, so a
// clean clone on a machine with a warm cache builds nothing.
func BinDir() (string, error) {
	if d := os.Getenv("STATUSGATE_DENDRITE_DIR"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find user cache dir: %w", err)
	}
	return filepath.Join(c, "statusgate", "dendrite-"+Version), nil
}

var binaries = []string{"dendrite", "generate-config", "generate-keys"}

// Binaries returns BinDir after making sure it holds the Dendrite binaries, building
// them (go build of the pinned module) if not. An exclusive flock on BinDir+".lock"
// serialises builders across processes: the first builds, the others wait and reuse.
func Binaries(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	if err != nil {
		t.Fatalf("homeserver: %v", err)
	}
	start := time.Now()
	built, err := buildonce.Do(dir+".lock", func() bool { return haveBinaries(dir) }, func() error {
		t.Logf("homeserver: building Dendrite %s into %s (about 150 s cold, once per machine)", Version, dir)
		return build(dir)
	})
	if err != nil {
		t.Fatalf("homeserver: build Dendrite %s: %v", Version, err)
	}
	if built {
		t.Logf("homeserver: built Dendrite in %s", time.Since(start).Round(time.Second))
	}
	return dir
}

func haveBinaries(dir string) bool {
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// build downloads the pinned module and builds its commands into a temporary sibling
// of dir, then renames it into place, so an interrupted build leaves no half cache.
func build(dir string) error {
	work, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	dl := exec.Command("go", "mod", "download", "-json", "github.com/element-hq/dendrite@"+Version)
	dl.Dir, dl.Env = work, env // outside any module: a plain module download
	out, err := dl.Output()
	if err != nil {
		return fmt.Errorf("go mod download: %w: %s", err, stderrOf(err))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download: no module dir (%v %s)", err, mod.Error)
	}
	bin := filepath.Join(work, "bin")
	args := []string{"build", "-o", bin + "/"}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = mod.Dir, append(env, "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	_ = os.RemoveAll(dir)
	return os.Rename(bin, dir)
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// AppService is the application service registered with the homeserver.
type AppService struct {
	// ID is the registration ID. Default "statusgate".
	ID string
	// URL is where the homeserver pushes transactions, such as "http://127.0.0.1:29333".
	URL string
	// ASToken and HSToken are the two secrets.
	ASToken, HSToken string
	// SenderLocalpart is the bot's local part.
	SenderLocalpart string
	// UserRegex and AliasRegex are the exclusive namespaces, such as
	// "@status_.*:localhost" and "#status_.*:localhost".
	UserRegex, AliasRegex string
}

// Options configure a server.
type Options struct {
	// AppServices are written into as.yaml files and listed in app_service_api.
	AppServices []AppService
	// Registrations are raw registration YAML documents (as a bridge generates them),
	// listed like AppServices.
	Registrations [][]byte
}

// Server is one running Dendrite. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts Dendrite with opts on a free port of 127.0.0.1 (server name "localhost",
// SQLite in a temporary directory, rate limits off, open registration) and registers
// its stop with t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binaries(t), dir: t.TempDir(), port: freePort(t)}
	var files []string
	for _, as := range opts.AppServices {
		if as.ID == "" {
			as.ID = "statusgate"
		}
		reg := fmt.Sprintf("id: %q\nurl: %q\nas_token: %q\nhs_token: %q\nsender_localpart: %q\nrate_limited: false\n"+
			"namespaces:\n  users: [{exclusive: true, regex: %q}]\n  aliases: [{exclusive: true, regex: %q}]\n  rooms: []\n",
			as.ID, as.URL, as.ASToken, as.HSToken, as.SenderLocalpart, as.UserRegex, as.AliasRegex)
		opts.Registrations = append(opts.Registrations, []byte(reg))
	}
	for i, reg := range opts.Registrations {
		f := filepath.Join(s.dir, "as"+strconv.Itoa(i)+".yaml")
		if err := os.WriteFile(f, reg, 0o600); err != nil {
			t.Fatalf("homeserver: write registration: %v", err)
		}
		files = append(files, f)
	}
	s.run("generate-keys", "--private-key", filepath.Join(s.dir, "matrix_key.pem"))
	cfg := s.run("generate-config", "-ci", "-server", ServerName, "-dir", s.dir)
	conf := strings.Replace(cfg, "  config_files: []", "  config_files: ["+strings.Join(files, ", ")+"]", 1)
	conf = strings.Replace(conf, "  level: trace", "  level: warn", 1)
	if len(files) > 0 && conf == cfg {
		t.Fatalf("homeserver: generate-config output has no 'config_files: []' to fill")
	}
	if err := os.WriteFile(filepath.Join(s.dir, "dendrite.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatalf("homeserver: write config: %v", err)
	}
	t.Cleanup(s.Stop)
	s.start()
	return s
}

func (s *Server) run(name string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("homeserver: %s: %v: %s", name, err, stderrOf(err))
	}
	return string(out)
}

// URL returns "http://127.0.0.1:port", the same across Restart.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// ServerName returns the homeserver's server name, "localhost".
func (s *Server) ServerName() string { return ServerName }

// Stop kills Dendrite (SIGKILL, as in a crash) and waits for it to exit. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops Dendrite and starts it again on the same port, config and database.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Resume starts a server stopped with Stop again on the same port, config and
// database, and waits until it answers; for tests that act during the outage.
// Resuming a running server does nothing.
func (s *Server) Resume() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if !running {
		s.start()
	}
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(filepath.Join(s.bin, "dendrite"), "-config", filepath.Join(s.dir, "dendrite.yaml"),
		"-http-bind-address", s.Addr(), "-https-bind-address", "", "-really-enable-open-registration")
	cmd.Dir = s.dir
	logf, err := os.OpenFile(filepath.Join(s.dir, "dendrite.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatalf("homeserver: create log: %v", err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("homeserver: start dendrite: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.URL() + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "dendrite.log"))
			s.t.Fatalf("homeserver: /versions not answering on %s after %s: %v\n%s", s.Addr(), readyTimeout, err, log)
		}
		// Dendrite answers within ~0.5-0.7 s (TEST-SERVERS.md §1a); polling the
		// endpoint is the only readiness signal it gives.
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns Dendrite's log so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "dendrite.log"))
	return string(b)
}

// RegisterUser registers the human account @localpart:localhost with m.login.dummy
// and returns a mautrix.Client logged in as it.
func (s *Server) RegisterUser(t testing.TB, localpart string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := mautrix.NewClient(s.URL(), "", "")
	if err != nil {
		t.Fatalf("homeserver: client: %v", err)
	}
	resp, err := c.RegisterDummy(ctx, &mautrix.ReqRegister[any]{
		Username: localpart, Password: "password-" + localpart, InhibitLogin: false,
	})
	if err != nil {
		t.Fatalf("homeserver: register %s: %v", localpart, err)
	}
	c.SetCredentials(resp.UserID, resp.AccessToken)
	c.DeviceID = resp.DeviceID
	return c
}

// UserID returns @localpart:localhost.
func UserID(localpart string) id.UserID { return id.NewUserID(localpart, ServerName) }

// freePort returns a port of 127.0.0.1 reserved for this test process.
func freePort(t testing.TB) int { return freeport.Port(t) }

// FreeAddr returns a free "127.0.0.1:port", for the appservice listener.
func FreeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}
