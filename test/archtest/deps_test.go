// Package archtest enforces the dependency direction of ARCHITECTURE.md: lower layers never
// import higher ones, connectors import only the bridges contract, and nothing outside
// tests imports test/. It runs in `make test` and `make lint`.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/statusgate/statusgate"

// allowed reports whether package pkg (module-relative) may import dep (module-relative).
// Packages that do not exist yet are covered by their prefix, so the rule is in force
// from the first file.
func allowed(pkg, dep string) bool {
	under := func(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
	switch {
	case under(pkg, "test"): // test kits may build on each other (test/freeport)
		return true
	case under(dep, "test"), dep == "bridges/bridgestest", dep == "core/gateway/gatewaytest":
		return false // test kits are for _test.go files only (checked without -test)
	case under(pkg, "cmd"):
		return true
	case pkg == "bridges", pkg == "identity", pkg == "keyfile", pkg == "records", pkg == "":
		return dep == "" && pkg != ""
	case under(pkg, "bridges"): // a connector: the contract and its own subtree only
		conn := strings.Join(strings.SplitN(pkg, "/", 3)[:2], "/")
		return dep == "bridges" || under(dep, conn)
	case under(pkg, "puppet"):
		return under(dep, "puppet") || dep == "identity" || dep == "bridges" || dep == "records"
	case under(pkg, "store"):
		return under(dep, "store") || dep == "bridges" || dep == "identity" || dep == "records" ||
			(under(dep, "core") && !under(dep, "core/gateway") && !under(dep, "core/status"))
	case under(pkg, "core/gateway"):
		// Not store: the router persists through its Ledger interface (records' types)
		// and links no database driver (TestGatewayLinksNoDatabaseDriver).
		return under(dep, "core/gateway") || dep == "bridges" || under(dep, "core/status") ||
			under(dep, "puppet") || dep == "records" || dep == "identity"
	case under(pkg, "core/discv5"): // topic discovery: a leaf of its own
		return under(dep, "core/discv5")
	case under(pkg, "core/peers"): // the peer pool works on discovery only
		return under(dep, "core/peers") || dep == "core/discv5"
	case under(pkg, "core/whisper"): // the envelope service knows its wires only through its Wire seam
		return under(dep, "core/whisper") || dep == "identity"
	case under(pkg, "core/waku"): // a wire of the envelope service: whisper's seam only
		return under(dep, "core/waku") || under(dep, "core/whisper")
	case under(pkg, "core/ratchet"): // below core/status, above core/whisper; payloads ride inside it
		return under(dep, "core/ratchet") || under(dep, "core/whisper") || dep == "identity"
	case under(pkg, "core/status"):
		return under(dep, "core") && !under(dep, "core/gateway") || dep == "identity"
	case under(pkg, "core"):
		return under(dep, "core") && !under(dep, "core/gateway") && !under(dep, "core/status") || dep == "identity" ||
			dep == "keyfile"
	}
	return false
}

type listed struct {
	ImportPath string
	Imports    []string
}

func TestDependencyDirection(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	n := 0
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		pkg := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if dep := rel(imp); !allowed(pkg, dep) {
				t.Errorf("%s must not import %s (see ARCHITECTURE.md, dependency direction)", orRoot(pkg), orRoot(dep))
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if n < 3 {
		t.Fatalf("go list saw only %d packages", n)
	}
}

func TestAllowed_rules(t *testing.T) {
	cases := []struct {
		pkg, dep string
		ok       bool
	}{
		{"core/whisper", "core/gateway", false},
		{"core/whisper", "bridges", false},
		{"core/node", "core/whisper", true},
		{"core/node", "core/waku", true},
		{"core/waku", "core/whisper", true},
		{"core/waku", "core/node", false},
		{"core/waku", "identity", false},
		{"core/whisper", "core/waku", false},
		{"core/status", "core/chat", true},
		{"core/status", "store", false},
		{"bridges/irc", "bridges", true},
		{"bridges/irc", "bridges/matrix", false},
		{"bridges/irc", "core/status", false},
		{"bridges/irc/internal/x", "bridges/irc", true},
		{"core/gateway", "bridges/irc", false},
		{"puppet", "store", false},
		{"store", "core/gateway", false},
		{"store", "core/mvds", true},
		{"store", "core/ratchet", true},
		{"core/ratchet", "core/whisper", true},
		{"core/ratchet", "core/chat", false},
		{"core/ratchet", "core/node", false},
		{"core/ratchet/protobuf", "core/ratchet", true},
		{"core/status", "core/ratchet", true},
		{"core/chat", "core/ratchet", true},
		{"identity", "core/whisper", false},
		{"cmd/bridge", "bridges/irc", true},
		{"core/whisper", "test/interop", false},
		{"cmd/bridge", "", true},
		{"core/node", "keyfile", true},
		{"keyfile", "identity", false},
		{"bridges/matrix", "keyfile", false},
		{"records", "bridges", false},
		{"store", "records", true},
		{"core/gateway", "records", true},
		{"core/gateway", "store", false},
		{"puppet", "records", true},
		{"core/discv5", "core/whisper", false},
		{"core/peers", "core/discv5", true},
		{"core/peers", "core/node", false},
		{"core/node", "core/peers", true},
		{"bridges/irc", "bridges/bridgestest", false},
		{"cmd/bridge", "bridges/bridgestest", false},
		{"cmd/bridge", "core/gateway/gatewaytest", false},
		{"core/gateway", "core/gateway/gatewaytest", false},
		{"test/ircd", "test/freeport", true},
		{"store", "test/freeport", false},
	}
	for _, tc := range cases {
		if got := allowed(tc.pkg, tc.dep); got != tc.ok {
			t.Errorf("allowed(%q, %q) = %v, want %v", tc.pkg, tc.dep, got, tc.ok)
		}
	}
}

// TestGatewayLinksNoDatabaseDriver checks what the router links, not only what it
// imports: no SQL driver (go-sqlite3's cgo, pgx) may reach core/gateway by any path.
func TestGatewayLinksNoDatabaseDriver(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", module+"/core/gateway")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps saw only %d packages", len(deps))
	}
	for _, d := range deps {
		if strings.Contains(d, "go-sqlite3") || strings.HasPrefix(d, "github.com/jackc/") || d == module+"/store" {
			t.Errorf("core/gateway links %s", d)
		}
	}
}

// statusGoAlias is the one status-go package the module imports: Status's alias word lists.
const statusGoAlias = "github.com/status-im/status-go/protocol/identity/alias"

// TestStatusGoOnlyForAliases checks that status-go (a large module kept for its alias
// word lists) is imported by identity alone, and only its protocol/identity/alias package,
// tests included; the reference peers built from it live in modules of their own.
func TestStatusGoOnlyForAliases(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	found := false
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
			if imp != "github.com/status-im/status-go" && !strings.HasPrefix(imp, "github.com/status-im/status-go/") {
				continue
			}
			if rel(p.ImportPath) != "identity" || imp != statusGoAlias {
				t.Errorf("%s imports %s: only identity imports status-go, and only %s", orRoot(rel(p.ImportPath)), imp, statusGoAlias)
			} else {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("identity does not import %s (the rule above would check nothing)", statusGoAlias)
	}
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

func orRoot(p string) string {
	if p == "" {
		return "(module root)"
	}
	return p
}
