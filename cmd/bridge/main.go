// Command bridge is the statusgate gateway: a Status (Whisper v6) node bridged to Matrix,
// IRC and Slack. This file parses the command line, wires signals to a context and turns
// errors into exit codes; init.go prepares a fresh gateway (bridge init), run.go builds
// and runs the services, checkconfig.go checks a configuration (bridge check-config),
// whois.go looks puppets up (bridge whois), and chat.go is the terminal client of one
// public chat (bridge chat).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/statusgate/statusgate"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitUsage  = 2
	exitConfig = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: bridge <command> [flags]

commands:
  init      create a configuration, the data dir, the node key, the gateway secret, the
            API token and the admin token:
            bridge init [-out FILE | -config FILE] [-force]  (default -out statusgate.yaml;
            -force overwrites the configuration, never a key file)
            bridge init -keys [-config FILE]  (only the missing key files, no configuration)
  run       run the gateway (flags: -config FILE; default: the embedded config.example.yaml)
  check-config
            report every problem of a configuration, and of the key files run would load,
            as FILE:LINE: key: message (bridge check-config [-config FILE]); exit 0 if
            none, 3 if any
  generate-registration
            write the Matrix appservice registration (and fresh tokens) for a
            connectors.matrix section: bridge generate-registration [-config FILE]
              [-network NAME] [-out registration.yaml] [-force]
  routes    list or change the running gateway's route table (applied at once, kept
            across restarts), through its admin server (http.listen, http.token_file):
            bridge routes [-config FILE] list | add CHAT CHANNEL[=in|=out]… | remove CHAT
  whois     look a puppet up by its Status chat key or by the remote user it stands for:
            bridge whois [-config FILE] <chat key | network:user>  (exit 1 if none)
  chat      join a Status public chat from the terminal:
            bridge chat --peer ENODE [--peer ENODE…] --chat NAME [--key FILE]
              [--mailserver ENODE] [--format both|transit|protobuf] [--alias-words DIR]
              [--listen ADDR] [-config FILE]
            (bridge chat -h for details)
  peers     print the running gateway's peers and topic discovery state (peers per
            topic, search fast/slow/paused, mailservers found), read from its admin
            server (http.listen): bridge peers [-config FILE] [-json]
  version   print the version
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfgPath := fs.String("config", "", "configuration file (default: the embedded config.example.yaml)")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "bridge:", err)
			return exitConfig
		}
		warnExposedConfig(cfg.Log.logger(stderr), *cfgPath)
		if err := runGateway(ctx, cfg, stderr); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "bridge:", err)
			return exitFail
		}
		return exitOK
	case "init":
		return runInit(args[1:], stdout, stderr)
	case "check-config":
		return runCheckConfig(args[1:], stdout, stderr)
	case "routes":
		return runRoutes(ctx, args[1:], stdout, stderr)
	case "whois":
		return runWhois(ctx, args[1:], stdout, stderr)
	case "generate-registration":
		return runGenerateRegistration(args[1:], stdout, stderr)
	case "chat":
		return runChat(ctx, args[1:], stdin, stdout, stderr)
	case "peers":
		return runPeers(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "bridge: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
}

func versionString() string {
	s := fmt.Sprintf("statusgate %s (%s %s/%s", statusgate.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += " " + kv.Value[:12]
			}
		}
	}
	return s + ")"
}
