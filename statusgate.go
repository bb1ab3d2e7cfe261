// Package statusgate holds what belongs to the repository as a whole rather than to one
// package: the embedded example configuration that `bridge run` uses when given no file.
package statusgate

import (
	"bytes"
	_ "embed"
)

//go:embed config.example.yaml
var exampleConfig []byte

// ExampleConfig returns a copy of config.example.yaml as embedded at build time.
func ExampleConfig() []byte { return bytes.Clone(exampleConfig) }

// Version is the gateway's release version.
const Version = "0.1.0-dev"
