package freeport

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestPort_uniqueAndBindable(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p := Port(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < low || p > high {
			t.Fatalf("port %d outside %d–%d", p, low, high)
		}
	}
	l, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatalf("listen on a handed-out address: %v", err)
	}
	l.Close()
}

// TestPort_reservedAcrossProcesses: a port this process holds is never handed to another
// test process (the child asks for ports until it has seen every one it could get and
// reports them; none may be ours).
func TestPort_reservedAcrossProcesses(t *testing.T) {
	if os.Getenv("FREEPORT_CHILD") == "1" {
		var out []string
		for range 50 {
			out = append(out, strconv.Itoa(Port(t)))
		}
		os.Stdout.WriteString("PORTS " + strings.Join(out, " ") + "\n")
		return
	}
	ours := map[string]bool{}
	for range 2000 {
		ours[strconv.Itoa(Port(t))] = true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPort_reservedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "FREEPORT_CHILD=1")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	_, list, ok := strings.Cut(string(b), "PORTS ")
	if !ok {
		t.Fatalf("child printed no ports:\n%s", b)
	}
	for _, p := range strings.Fields(list) {
		if ours[p] {
			t.Fatalf("port %s handed to the child while this process holds it", p)
		}
	}
}
