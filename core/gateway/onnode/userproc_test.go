package onnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/test/statusnet"
)

// userProcEnv, when set to "1", makes the test binary the Status user's process of
// BenchmarkGateway_Puppets10K instead of running tests (TestMain): the process whose
// memory the benchmark measures must be the gateway's alone.
const userProcEnv = "STATUSGATE_BENCH_USER_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(userProcEnv) == "1" {
		if err := runUserProcess(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "status user process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runUserProcess is the Status user's process: a node of its own on loopback (ZeroPoW,
// as statusnet's) with a Status user in chat "status". It writes "enode <url>" once the
// user has joined, then "m <n>" for each message "… m <n>" it receives (n is -1 for
// other texts), and stops when in ends: its parent closing the pipe.
func runUserProcess(in io.Reader, out io.Writer) error {
	key, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	n, err := node.New(node.Config{ZeroPoW: true, ListenAddr: "127.0.0.1:0", MaxPeers: 50}, key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		return fmt.Errorf("node run: %w", err)
	case <-time.After(statusnet.WaitTimeout):
		return errors.New("node did not start")
	}
	uc, err := status.New(n, status.Config{PoW: benchUserPoW})
	if err != nil {
		return err
	}
	ch, err := uc.Join(ctx, "status")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "enode %s\n", n.Enode())
	if err := w.Flush(); err != nil {
		return err
	}
	// The parent closing stdin is the stop: Leave closes Messages, ending the loop below.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		io.Copy(io.Discard, in)
		ch.Leave()
	}()
	var werr error
	for m := range ch.Messages() {
		if werr == nil {
			fmt.Fprintf(w, "m %d\n", benchSeq(m.Text))
			if len(ch.Messages()) == 0 { // flush per burst, not per line
				werr = w.Flush()
			}
		}
	}
	<-stopped
	cancel()
	if err := <-done; err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	return werr
}

// startUserProcess runs the Status user in a child process (this test binary, by
// userProcEnv), calls got with n for each message "… m <n>" it receives (on one
// goroutine), and returns its node's enode URL. The process stops in b.Cleanup.
func startUserProcess(b *testing.B, got func(n int)) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), userProcEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the Status user's process: %v", err)
	}
	url := make(chan string, 1)
	read := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				first = false
				u, ok := strings.CutPrefix(line, "enode ")
				if !ok {
					read <- fmt.Errorf("user process: first line %q, want enode <url>", line)
					return
				}
				url <- u
				continue
			}
			if v, ok := strings.CutPrefix(line, "m "); ok {
				if n, err := strconv.Atoi(v); err == nil {
					got(n)
				}
			}
		}
		read <- sc.Err()
	}()
	b.Cleanup(func() {
		stdin.Close()
		waited := make(chan error, 1)
		go func() { <-read; waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				b.Errorf("the Status user's process: %v", err)
			}
		case <-time.After(statusnet.WaitTimeout):
			cmd.Process.Kill()
			b.Errorf("the Status user's process did not stop within %v", statusnet.WaitTimeout)
		}
	})
	select {
	case u := <-url:
		return u
	case err := <-read:
		read <- err // for the Cleanup's wait
		b.Fatalf("the Status user's process ended before it listened: %v", err)
	case <-time.After(2 * statusnet.WaitTimeout):
		b.Fatal("the Status user's process did not listen")
	}
	return ""
}

// connectUserProcess makes n dial the user process's node at url and waits until
// they are Whisper peers.
func connectUserProcess(b *testing.B, n *node.Node, url string) {
	b.Helper()
	peer, err := enode.ParseV4(url)
	if err != nil {
		b.Fatalf("user process enode %q: %v", url, err)
	}
	if err := n.AddPeer(url, false); err != nil {
		b.Fatal(err)
	}
	statusnet.WaitPeer(b, n, peer.ID())
}
