package status_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
)

// startNode runs a Status node on a free loopback port until ctx ends.
func startNode(ctx context.Context) *node.Node {
	key, err := crypto.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.New(node.Config{ListenAddr: "127.0.0.1:0"}, key)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := n.Run(ctx); err != nil {
			log.Print(err)
		}
	}()
	<-n.Ready()
	return n
}

// Two nodes on loopback: Bob tunes in to #status, Alice says something there.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	aliceNode, bobNode := startNode(ctx), startNode(ctx)
	if err := bobNode.AddPeer(aliceNode.Enode(), false); err != nil {
		log.Fatal(err)
	}
	if err := bobNode.WaitPeers(ctx, 1); err != nil {
		log.Fatal(err)
	}

	bob, err := status.New(bobNode, status.Config{}) // Config.Namer adds three-word aliases
	if err != nil {
		log.Fatal(err)
	}
	listening, err := bob.Join(ctx, "status") // the public chat #status
	if err != nil {
		log.Fatal(err)
	}
	defer listening.Leave()

	alice, err := status.New(aliceNode, status.Config{})
	if err != nil {
		log.Fatal(err)
	}
	speaking, err := alice.Join(ctx, "status")
	if err != nil {
		log.Fatal(err)
	}
	defer speaking.Leave()
	aliceKey, _ := crypto.GenerateKey() // her chat identity
	if _, err := speaking.Send(ctx, "hello, #status", aliceKey); err != nil {
		log.Fatal(err)
	}

	m := <-listening.Messages()
	fmt.Println(m.Text)
	fmt.Println(m.Author.Equal(&aliceKey.PublicKey))
	// Output:
	// hello, #status
	// true
}
