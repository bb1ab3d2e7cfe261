package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"gopkg.in/yaml.v3"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/store"
)

const checkConfigUsage = `usage: bridge check-config [-config FILE]

Checks a configuration (default: the embedded config.example.yaml) without starting
anything, and reports every problem, one a line, as FILE:LINE: key.path: message: unknown
keys, values of the wrong type, invalid settings, and whatever else bridge run would
refuse at start: the files it reads (alias word lists; a missing, exposed or malformed
gateway secret; an exposed node key; a missing or exposed API token while the API
connector is enabled) and anything a service refuses when it is built (it builds them
all, as run does, and starts none). It does not connect to the database. A
configuration file readable by group or others is warned about ("FILE: warning: …"),
not refused. Prints "FILE: ok" and exits 0 when there is none; exits 3 otherwise.

flags:
`

// runCheckConfig is `bridge check-config`. It returns the exit code.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), checkConfigUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "configuration file (default: the embedded config.example.yaml)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bridge check-config: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	name := displayPath(*cfgPath)
	for _, w := range deprecationWarnings(*cfgPath) {
		fmt.Fprintln(stderr, w.format(name))
	}
	problems := checkConfig(*cfgPath)
	if w := exposedConfig(*cfgPath); w != "" {
		fmt.Fprintf(stdout, "%s: warning: %s\n", name, w)
	}
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "%s: ok\n", name)
		return exitOK
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p.format(name))
	}
	return exitConfig
}

// deprecationWarnings are the configuration's keys read under a former name, as
// warnings at their lines ("deprecated: …"); they do not fail the check.
func deprecationWarnings(path string) []problem {
	raw, err := readConfigBytes(path)
	if err != nil {
		return nil
	}
	c, root, _, ok := parseConfig(raw)
	if !ok {
		return nil
	}
	var out []problem
	for _, d := range c.deprecations() {
		p := keyProblem(root, d)
		p.msg = "deprecated: " + p.msg
		out = append(out, p)
	}
	return out
}

// problem is one finding of check-config. line is 0 when unknown; key is the dotted key
// path, "" when there is none.
type problem struct {
	line int
	key  string
	msg  string
}

// String is the problem without its file: "line 3: node.listen: unknown key".
func (p problem) String() string {
	s := p.format("")
	if p.line > 0 {
		s = "line " + s[1:]
	}
	return strings.TrimPrefix(s, ": ")
}

// format is the problem as check-config prints it: "FILE:LINE: key.path: message", the
// line and key left out when unknown.
func (p problem) format(file string) string {
	s := file
	if p.line > 0 {
		s += ":" + strconv.Itoa(p.line)
	}
	if p.key != "" {
		s += ": " + p.key
	}
	return s + ": " + p.msg
}

var (
	// yaml.v3's messages: "yaml: line 3: …" (syntax) and "line 3: …" (TypeError entries).
	yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	// A TypeError entry for an unknown key under KnownFields.
	unknownFieldRE = regexp.MustCompile(`^field (.+) not found in type \S+$`)
	// A dotted key path at the start of a Validate error.
	keyPathRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(?:\[\d+\])*(?:\.[A-Za-z0-9_-]+(?:\[\d+\])*)*$`)
)

// checkConfig loads the configuration at path (the embedded example when empty) as
// loadConfig does, but collects every problem instead of stopping at the first: YAML
// errors (all of a TypeError's), Validate's errors, and the key files `bridge run` would
// refuse. Problems carry the line of their key when the file has it.
func checkConfig(path string) []problem {
	raw := statusgate.ExampleConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return []problem{{msg: fmt.Sprintf("read config: %v", err)}}
		}
		raw = b
	}
	c, root, problems, ok := parseConfig(raw)
	if !ok {
		return problems
	}
	c.withDefaults()
	for _, err := range flattenErrors(c.Validate()) {
		problems = append(problems, keyProblem(root, err.Error()))
	}
	for _, err := range checkStart(c) {
		problems = append(problems, keyProblem(root, err.Error()))
	}
	// In file order, as a compiler reports; those without a line last.
	slices.SortStableFunc(problems, func(a, b problem) int {
		return cmp.Compare(sortLine(a.line), sortLine(b.line))
	})
	return problems
}

func sortLine(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}

// parseConfig decodes raw strictly (unknown keys are errors) and returns the config,
// with defaults applied, the document's node tree, and every decoding problem. ok is
// false when the document could not be decoded at all (a syntax error); otherwise the
// config holds everything that did decode, and the problems are the keys that did not.
func parseConfig(raw []byte) (c *Config, root *yaml.Node, problems []problem, ok bool) {
	c, root = new(Config), new(yaml.Node)
	if err := yaml.Unmarshal(raw, root); err != nil {
		return nil, root, []problem{yamlProblem(root, err.Error())}, false
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, root, []problem{yamlProblem(root, err.Error())}, false
		}
		for _, msg := range te.Errors {
			problems = append(problems, yamlProblem(root, msg))
		}
	}
	c.withDefaults()
	return c, root, problems, true
}

// yamlProblem turns one of yaml.v3's messages into a problem at its line, naming the key
// found there.
func yamlProblem(root *yaml.Node, msg string) problem {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return problem{msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	p := problem{line: line, msg: m[2]}
	if f := unknownFieldRE.FindStringSubmatch(m[2]); f != nil {
		p.key, _ = keyAtLine(root, line, f[1])
		p.msg = "unknown key"
		if p.key == "" {
			p.msg = "unknown key " + strconv.Quote(f[1])
		}
		return p
	}
	p.key, _ = keyAtLine(root, line, "")
	return p
}

// keyProblem turns a Validate or file error, "key.path: message", into a problem at the
// line of that key, or of its nearest ancestor present in the file.
func keyProblem(root *yaml.Node, msg string) problem {
	key, rest, ok := strings.Cut(msg, ": ")
	if !ok || !keyPathRE.MatchString(key) {
		return problem{msg: msg}
	}
	return problem{line: lineOfKey(root, key), key: key, msg: rest}
}

// checkStart returns what `bridge run` would refuse at start with c, beyond
// Config.Validate: the files it reads (alias word lists, node key, gateway secret, API
// token) and whatever a constructor refuses, found by building every service as run
// does (assemble) on a throwaway SQLite store, without running anything. Each error
// starts with the key it is about. It never creates or changes the configured files.
func checkStart(c *Config) []error {
	var errs []error
	f := startFiles{}
	var err error
	if f.namer, err = c.Identity.namer(); err != nil {
		errs = append(errs, err)
		f.namer = identity.NewNamer(nil)
	}
	if err := checkNodeKey(c.Node.KeyFile); err != nil {
		errs = append(errs, fmt.Errorf("node.key_file: %w", err))
	}
	if f.secret, err = loadSecret(c.Gateway.SecretFile); err != nil {
		errs = append(errs, fmt.Errorf("gateway.secret_file: %w", err))
	}
	if *c.Connectors.API.Enabled {
		if c.Connectors.API.Token, err = loadToken(c.Connectors.API.TokenFile); err != nil {
			errs = append(errs, fmt.Errorf("connectors.api.token_file: %w", err))
		}
	}
	if c.HTTP.Listen != "" && len(c.Gateway.Routes) > 0 {
		if _, err := loadToken(c.HTTP.TokenFile); err != nil {
			errs = append(errs, fmt.Errorf("http.token_file: %w", err))
		}
	}
	if c.Validate() != nil {
		return errs // the constructors would refuse what is reported already
	}
	// Stand-ins for what run reads or creates, so that a missing file (reported above)
	// does not hide a constructor's refusal.
	if f.key, err = crypto.GenerateKey(); err != nil {
		return append(errs, fmt.Errorf("node key: %w", err))
	}
	if f.secret == nil {
		if f.secret, err = identity.GenerateSecret(rand.Reader); err != nil {
			return append(errs, fmt.Errorf("gateway secret: %w", err))
		}
	}
	if c.Connectors.API.Token == "" {
		c.Connectors.API.Token = "token-from-token-file"
	}
	dir, err := os.MkdirTemp("", "check-config-")
	if err != nil {
		return append(errs, fmt.Errorf("check-config: %w", err))
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(dir, "check.db")})
	if err != nil {
		return append(errs, fmt.Errorf("check-config: %w", err))
	}
	defer st.Close()
	if _, err := assemble(c, slog.New(slog.DiscardHandler), st, f); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkNodeKey checks the node key at path as node.LoadOrCreateKey would load it: a
// missing key is fine (run creates it), an exposed or malformed one is not.
func checkNodeKey(path string) error {
	b, err := readKeyFile(path, "node key")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	clear(b)
	if err != nil {
		return fmt.Errorf("node key %s: not hex", path)
	}
	_, err = crypto.ToECDSA(raw)
	clear(raw)
	if err != nil {
		return fmt.Errorf("node key %s: %w", path, err)
	}
	return nil
}

// pathStep is one step of a key path: a mapping key, or a sequence index (key "").
type pathStep struct {
	key   string
	index int
}

// parseKeyPath splits "a.b[1].c" into its steps.
func parseKeyPath(path string) []pathStep {
	var steps []pathStep
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		steps = append(steps, pathStep{key: name})
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			n, _ := strconv.Atoi(idx)
			steps = append(steps, pathStep{index: n})
			_, rest, _ = strings.Cut(after, "[")
		}
	}
	return steps
}

// lineOfKey returns the line of the key path in the document root: the line of its last
// step present in the file (an absent key is reported at its parent), 0 when none is.
func lineOfKey(root *yaml.Node, path string) int {
	n := docMapping(root)
	line := 0
	for _, st := range parseKeyPath(path) {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch {
		case st.key != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == st.key {
					line, next = n.Content[i].Line, n.Content[i+1]
					break
				}
			}
		case st.key == "" && n.Kind == yaml.SequenceNode && st.index < len(n.Content):
			next = n.Content[st.index]
			line = next.Line
		}
		n = next
	}
	return line
}

// keyAtLine returns the dotted path of the deepest key on line (named name, when not
// empty), or of the sequence element starting there.
func keyAtLine(root *yaml.Node, line int, name string) (string, bool) {
	var best string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line && (name == "" || k.Value == name) {
					best = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if name == "" && e.Line == line && e.Kind == yaml.ScalarNode {
					best = p
				}
				walk(e, p)
			}
		}
	}
	if m := docMapping(root); m != nil {
		walk(m, "")
	}
	return best, best != ""
}

// docMapping returns the top-level mapping of a parsed document, nil if there is none.
func docMapping(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 && root.Content[0].Kind == yaml.MappingNode {
		return root.Content[0]
	}
	return nil
}
