package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/records"
	"github.com/statusgate/statusgate/store"
)

const whoisUsage = `usage: bridge whois [-config FILE] <chat key | network:user>

Looks up the puppets recorded in the store of the configuration (default: the embedded
config.example.yaml): by a puppet's Status chat key (0x04…, compressed 02…/03…, or the
zQ3… display key), or by the remote user a puppet stands for, "network:user" (every
gateway account of that network). Prints each record's network, account, user, display
name, chat key, display key, alias (three-word with identity.alias_words, else the short
key) and first and last sighting. Exits 0 when found, 1 when none (or on a store error),
2 on a malformed query, 3 on a configuration error.

flags:
`

// runWhois is `bridge whois`. It returns the exit code.
func runWhois(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("whois", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), whoisUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "configuration file (default: the embedded config.example.yaml)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "bridge whois: want exactly one chat key or network:user")
		fs.Usage()
		return exitUsage
	}
	query := fs.Arg(0)
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "bridge whois:", err)
		return exitConfig
	}
	namer, err := cfg.Identity.namer()
	if err != nil {
		fmt.Fprintln(stderr, "bridge whois:", err)
		return exitConfig
	}
	if cfg.Store.Driver == store.DriverSQLite {
		// Open would create an empty database; a missing one holds no puppets.
		ok, err := exists(cfg.Store.Path)
		if err != nil {
			fmt.Fprintln(stderr, "bridge whois:", err)
			return exitFail
		}
		if !ok {
			fmt.Fprintf(stderr, "bridge whois: no puppet for %s (no store at %s yet)\n", sanitizeTerminal(query), cfg.Store.Path)
			return exitFail
		}
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		fmt.Fprintln(stderr, "bridge whois: open store:", err)
		return exitFail
	}
	defer st.Close()

	// Whois only reads records: it derives no key, so the registry needs no secret.
	recs, err := puppet.New(nil, st, nil).Whois(ctx, query)
	switch {
	case errors.Is(err, puppet.ErrInvalidQuery):
		fmt.Fprintln(stderr, "bridge whois:", sanitizeTerminal(err.Error()))
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, "bridge whois:", sanitizeTerminal(err.Error()))
		return exitFail
	case len(recs) == 0:
		fmt.Fprintf(stderr, "bridge whois: no puppet for %s\n", sanitizeTerminal(query))
		return exitFail
	}
	for i, r := range recs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printPuppet(stdout, r, namer)
	}
	return exitOK
}

// printPuppet writes one record, a "label value" line per field. Remote text (user,
// display name) is sanitised for the terminal.
func printPuppet(w io.Writer, r records.Puppet, namer *identity.Namer) {
	var displayKey, alias string
	if pub, err := identity.ParseChatKey(r.ChatKey); err == nil {
		displayKey, alias = identity.DisplayKey(pub), namer.Name(pub)
	} else {
		displayKey, alias = "(unreadable chat key)", "-"
	}
	name := r.DisplayName
	if name == "" {
		name = "-"
	}
	for _, f := range [...][2]string{
		{"network", r.Network},
		{"account", r.Account},
		{"user", r.User},
		{"display name", name},
		{"chat key", r.ChatKey},
		{"display key", displayKey},
		{"alias", alias},
		{"first seen", r.FirstSeen.UTC().Format(time.RFC3339)},
		{"last seen", r.LastSeen.UTC().Format(time.RFC3339)},
	} {
		fmt.Fprintf(w, "%-13s%s\n", f[0], sanitizeTerminal(f[1]))
	}
}
