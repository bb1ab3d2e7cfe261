package waku

import (
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/p2p"

	"github.com/statusgate/statusgate/core/whisper"
)

// Config is node.waku: which Waku versions the node offers.
type Config struct {
	// Versions are the waku versions offered. Default [1, 0]: waku/1, and waku/0 for
	// peers that offer only it (status-go offers both; devp2p picks waku/1 then).
	Versions []uint `yaml:"versions"`
}

func (c Config) withDefaults() Config {
	if len(c.Versions) == 0 {
		c.Versions = []uint{V1, V0}
	}
	return c
}

// Validate reports an unknown or repeated version (keys named as in the YAML).
func (c Config) Validate() error {
	for i, v := range c.Versions {
		if v != V0 && v != V1 {
			return fmt.Errorf("waku.versions[%d]: %d (want 0 or 1)", i, v)
		}
		if slices.Index(c.Versions, v) != i {
			return fmt.Errorf("waku.versions[%d]: %d repeated", i, v)
		}
	}
	return nil
}

// Protocols registers the Waku wires of c with s and returns their protocols for a
// p2p.Server, each with wc's limits and preference.
func Protocols(s *whisper.Service, c Config, wc whisper.WireConfig) []p2p.Protocol {
	c = c.withDefaults()
	out := make([]p2p.Protocol, 0, len(c.Versions))
	for _, v := range c.Versions {
		out = append(out, s.Protocol(Wire(v), wc))
	}
	return out
}
