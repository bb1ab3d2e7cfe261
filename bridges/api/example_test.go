package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/api"
)

// printHost stands in for the gateway (the bridges.Host contract, in-process): it
// prints what it is given.
type printHost struct{}

func (printHost) Deliver(_ context.Context, ev bridges.Event) error {
	fmt.Printf("delivered %s from %s: %q\n", ev.Origin.ID, ev.Sender.ID, ev.Text)
	return nil
}
func (printHost) ReportState(bridges.State, error) {}
func (printHost) Logger() *slog.Logger             { return slog.New(slog.DiscardHandler) }

// A bot posts into the "status" channel and follows it. With curl the same is:
//
//	curl -H 'Authorization: Bearer $TOKEN' -d '{"user":"bot","text":"hello"}' \
//	     http://127.0.0.1:8480/v1/channels/status/messages
//	curl -N -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:8480/v1/channels/status/events
func Example() {
	const token = "example-token-0123456789"
	c, err := api.New(api.Config{Listen: "127.0.0.1:0", Token: token, Channels: []string{"status"}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, printHost{}) }()
	defer func() { cancel(); <-done }()
	<-c.Ready()
	base := "http://" + c.Addr().String() + "/v1/channels/status"

	req, _ := http.NewRequest("POST", base+"/messages", strings.NewReader(`{"user":"bot","text":"hello","id":"1"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(body))

	// Follow the channel; the gateway's Send shows up as an event.
	req, _ = http.NewRequest("GET", base+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	c.Send(ctx, bridges.Outbound{
		Event: bridges.Event{Kind: bridges.KindMessage, Text: "hi bot", Time: time.Unix(0, 0).UTC(),
			Origin: bridges.Origin{Network: "status", Channel: "status:test", ID: "status:0x01"},
			Sender: bridges.Sender{ID: "status:0x04ab", Name: "Owl"}},
		Channel: "api:status",
		Key:     "0123456789abcdef",
	})
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "" {
		fmt.Println(sc.Text())
	}
	// Output:
	// delivered api:status/1 from api:bot: "hello"
	// 202 Accepted {"id":"api:status/1"}
	// id: 1
	// event: message
	// data: {"id":"api:status/0123456789abcdef","kind":"message","channel":"status","origin":{"network":"status","channel":"status:test","id":"status:0x01"},"sender":{"id":"status:0x04ab","name":"Owl"},"text":"hi bot","reply_to":"","target":"","reaction":"","time":"1970-01-01T00:00:00Z"}
}
