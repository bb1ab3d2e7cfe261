package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/statusgate/statusgate"
)

// Config is the root configuration: one section per package that needs settings. Each
// field documents its zero-value default; withDefaults fills them, Validate checks them.
type Config struct {
	// DataDir holds the gateway's state. Default "./data".
	DataDir string    `yaml:"data_dir"`
	Log     LogConfig `yaml:"log"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// loadConfig reads path, or the embedded example when path is empty. Unknown keys are
// errors, so a typo never silently falls back to a default.
func loadConfig(path string) (*Config, error) {
	raw := statusgate.ExampleConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		raw = b
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config %s: %w", displayPath(path), err)
	}
	c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", displayPath(path), err)
	}
	return &c, nil
}

func displayPath(path string) string {
	if path == "" {
		return "(embedded config.example.yaml)"
	}
	return path
}

func (c *Config) withDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Validate checks every field and names the dotted key of the first bad one.
func (c *Config) Validate() error {
	if _, err := c.Log.level(); err != nil {
		return err
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data_dir: empty")
	}
	return nil
}

func (l LogConfig) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return 0, fmt.Errorf("log.level: %q is not debug, info, warn or error", l.Level)
	}
	return lv, nil
}

func (l LogConfig) logger(w io.Writer) *slog.Logger {
	lv, _ := l.level() // validated
	opts := &slog.HandlerOptions{Level: lv}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
