package slack_test

import (
	"fmt"

	"github.com/statusgate/statusgate/bridges/slack"
)

// How cmd/bridge builds the connector: New validates and does no I/O; the gateway then
// calls Run.
func ExampleNew() {
	c, err := slack.New(slack.Config{
		BotToken:    "xoxb-123-456-abc",
		AppToken:    "xapp-1-A1-789-def",
		Channels:    []string{"C0123ABCD"},
		IconURLBase: "https://bridge.example.org/identicon/",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name(), c.Capabilities().Replies)

	_, err = slack.New(slack.Config{BotToken: "xoxb-1", AppToken: "xapp-1", Channels: []string{"#general"}})
	fmt.Println(err)
	// Output:
	// slack true
	// invalid slack config: slack.channels[0]: "#general" is not a Slack channel ID (C…, G… or D…)
}
