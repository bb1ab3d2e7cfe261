// Package freeport hands tests loopback ports for servers they start as separate
// processes (the bridge binary, ngircd, Dendrite, PostgreSQL), which must be told their
// port before they bind it.
//
// "Listen on :0, close, pass the number on" races twice: the kernel hands the same
// ephemeral port to the next :0 bind or outgoing connection of any process, and two test
// binaries running at once can pick the same number. So ports come from below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 on Linux by
// default), where the kernel never picks on its own, and each is reserved with an
// exclusive flock on a file under the temporary directory, held until the test process
// exits: no other test process (nor this one) hands the same port out meanwhile.
//
// It must not be imported by anything but tests (test/archtest checks).
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// The range ports are drawn from: below Linux's default ephemeral range and above the
// ports servers commonly use by default.
const (
	low  = 20000
	high = 32767
)

var (
	mu sync.Mutex
	// held keeps the lock files open (and so the reservations held) for the life of the
	// test process; the kernel releases them at exit.
	held []*os.File
)

// Port returns a port of 127.0.0.1 that is free for both TCP and UDP (devp2p uses the
// same number for both) and reserved for this test process.
func Port(t testing.TB) int {
	t.Helper()
	p, err := reserve()
	if err != nil {
		t.Fatalf("freeport: %v", err)
	}
	return p
}

// Addr returns "127.0.0.1:<Port>".
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// Reserve is Port for callers without a testing.TB (a TestMain starting a server).
func Reserve() (int, error) { return reserve() }

func reserve() (int, error) {
	dir := filepath.Join(os.TempDir(), "statusgate-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("create %s: %w", dir, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := low + rand.IntN(high-low+1)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, fmt.Errorf("open lock file: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // reserved by another test process, or by this one
			continue
		}
		if !bindable(p) {
			f.Close() // a server outside the tests holds it
			continue
		}
		held = append(held, f)
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d–%d after 200 tries", low, high)
}

func bindable(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}
