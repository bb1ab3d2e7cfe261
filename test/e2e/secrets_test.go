package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Issue 15 finding 12, secrets on disk, through the bridge binary: key files fsynced with
// their directory, a warning for a configuration others can read, generate-registration
// -force writing 0600 over a 0644 file, the database files 0600.

// straceEvent is one system call of an strace -f log that this test looks at.
type straceEvent struct {
	call, path string // path: the openat or rename target
	fd         string // the fd returned by openat, or the argument of fsync/close
	dir        bool   // openat with O_DIRECTORY
}

var (
	straceOpenRE   = regexp.MustCompile(`^\d+\s+openat\(AT_FDCWD, "([^"]+)", ([A-Z_|]+)(?:, \d+)?\) = (\d+)$`)
	straceFdRE     = regexp.MustCompile(`^\d+\s+(fsync|fdatasync|close)\((\d+)\)\s+= 0$`)
	straceRenameRE = regexp.MustCompile(`^\d+\s+renameat2?\(AT_FDCWD, "[^"]+", AT_FDCWD, "([^"]+)"`)
)

// straceRun runs the bridge binary with args under strace and returns the file events.
// strace is a test dependency (test/deps.sh installs it); its absence fails the test.
func straceRun(t *testing.T, args ...string) []straceEvent {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace not installed (test/deps.sh installs it): %v", err)
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	cmd := exec.Command(strace, append([]string{"-f", "-qq", "-o", log,
		"-e", "trace=openat,fsync,fdatasync,close,rename,renameat,renameat2", bridgeBin}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace bridge %v: %v\n%s", args, err, out)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []straceEvent
	// With -f, a call interrupted by another thread's is split in two lines:
	// "PID openat(… <unfinished ...>" and "PID <... openat resumed>) = 5".
	unfinished := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		pid, _, _ := strings.Cut(line, " ")
		if head, ok := strings.CutSuffix(line, " <unfinished ...>"); ok {
			unfinished[pid] = head
			continue
		}
		if i := strings.Index(line, " resumed>"); i >= 0 && strings.Contains(line[:i], "<... ") {
			line = unfinished[pid] + line[i+len(" resumed>"):]
			delete(unfinished, pid)
		}
		if m := straceOpenRE.FindStringSubmatch(line); m != nil {
			evs = append(evs, straceEvent{call: "openat", path: m[1], fd: m[3], dir: strings.Contains(m[2], "O_DIRECTORY")})
		} else if m := straceFdRE.FindStringSubmatch(line); m != nil {
			evs = append(evs, straceEvent{call: m[1], fd: m[2]})
		} else if m := straceRenameRE.FindStringSubmatch(line); m != nil {
			evs = append(evs, straceEvent{call: "rename", path: m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// fsyncedAt returns the index of the first fsync (or fdatasync) of a descriptor opened
// on path at or after evs[from], before that descriptor is closed; -1 when there is none.
func fsyncedAt(evs []straceEvent, from int, path string) int {
	for i := from; i < len(evs); i++ {
		ev := evs[i]
		if ev.call != "openat" || ev.path != path {
			continue
		}
		for j := i + 1; j < len(evs); j++ {
			next := evs[j]
			if next.fd != ev.fd {
				continue
			}
			if next.call == "fsync" || next.call == "fdatasync" {
				return j
			}
			break // closed, or the number reused
		}
	}
	return -1
}

// synced reports whether the process fsynced the file path, and after that its
// directory.
func synced(evs []straceEvent, path string) (file, directory bool) {
	i := fsyncedAt(evs, 0, path)
	if i < 0 {
		return false, false
	}
	return true, fsyncedAt(evs, i, filepath.Dir(path)) >= 0
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestSecrets_keyFilesFsynced: `bridge init -keys` fsyncs the node key, the gateway
// secret and the API token, and then their directory, before it reports them created:
// a secret lost to a power cut after the report would make the next init create a new
// one and silently re-key every puppet.
func TestSecrets_keyFilesFsynced(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "statusgate.yaml")
	writeFile(t, cfg, "data_dir: "+data+"\n")
	evs := straceRun(t, "init", "-keys", "-config", cfg)
	for _, name := range []string{"nodekey", "gateway.secret", "api.token"} {
		p := filepath.Join(data, name)
		file, directory := synced(evs, p)
		if !file || !directory {
			t.Errorf("%s: file fsynced %v, directory fsynced after it %v", name, file, directory)
		}
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, m)
		}
	}
}

// TestSecrets_registrationForceMode: generate-registration -force over a registration
// left 0644 (hand-copied, say) writes it 0600: it holds as_token and hs_token.
func TestSecrets_registrationForceMode(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "statusgate.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
connectors:
  matrix:
    - homeserver_url: http://127.0.0.1:8008
      server_name: example.org
      listen: 127.0.0.1:29328
      url: http://127.0.0.1:29328
`)
	reg := filepath.Join(dir, "registration.yaml")
	if err := os.WriteFile(reg, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(reg, 0o644); err != nil {
		t.Fatal(err)
	}
	evs := straceRun(t, "generate-registration", "-config", cfg, "-out", reg, "-force")
	if m := mode(t, reg); m != 0o600 {
		t.Errorf("registration mode %v after -force, want 0600", m)
	}
	b, err := os.ReadFile(reg)
	if err != nil || !strings.Contains(string(b), "hs_token:") {
		t.Fatalf("registration not written: %v\n%s", err, b)
	}
	// The new file is written beside the old one, fsynced, renamed over it, and the
	// directory fsynced after the rename.
	written, renamed, dirSynced := false, -1, false
	for i, ev := range evs {
		switch {
		case ev.call == "openat" && strings.HasPrefix(ev.path, filepath.Join(dir, ".registration.yaml")):
			written = written || fsyncedAt(evs, i, ev.path) >= 0
		case ev.call == "rename" && ev.path == reg:
			renamed = i
		}
	}
	if renamed >= 0 {
		dirSynced = fsyncedAt(evs, renamed, dir) >= 0
	}
	if !written || renamed < 0 || !dirSynced {
		t.Errorf("registration: written beside and fsynced %v, renamed over the old one %v, directory fsynced after %v",
			written, renamed >= 0, dirSynced)
	}
}

// TestSecrets_exposedConfigWarns: a configuration readable by group or others (it
// holds tokens and passwords) is reported by check-config and by run, which still
// start: the operator may have reasons, but is told.
func TestSecrets_exposedConfigWarns(t *testing.T) {
	g := newGateway(t, gatewayOptions{})
	if err := os.Chmod(g.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runBridge(t, "check-config", "-config", g.cfgPath)
	if code != 0 || !strings.Contains(out, "readable by group or others") {
		t.Errorf("check-config on a 0644 config: exit %d, want 0 and a warning:\n%s", code, out)
	}
	g.start(t)
	g.waitReady(t)
	if log := g.tail(logTail); !strings.Contains(log, "readable by group or others") {
		t.Errorf("run on a 0644 config logs no warning:\n%s", log)
	}
	// The database files: 0600 whatever the umask (SQLite creates them 0644).
	for _, name := range []string{"statusgate.db", "statusgate.db-wal", "statusgate.db-shm"} {
		if m := mode(t, filepath.Join(g.dataDir, name)); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, m)
		}
	}
	g.stop(t)

	if err := os.Chmod(g.cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runBridge(t, "check-config", "-config", g.cfgPath)
	if code != 0 || strings.Contains(out, "readable by group or others") {
		t.Errorf("check-config on a 0600 config: exit %d:\n%s", code, out)
	}
}
