package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/statusgate/statusgate/bridges/matrix"
	"github.com/statusgate/statusgate/keyfile"
)

const registrationUsage = `usage: bridge generate-registration [-config FILE] [-network NAME] [-out FILE] [-force]

Writes the Matrix application service registration (registration.yaml) for the
connectors.matrix section named NAME (default: the first). The homeserver loads it
(Synapse: app_service_config_files; Dendrite: app_service_api.config_files). When the
section has no as_token and hs_token yet, fresh ones are generated and printed, to be
put into that section; the registration file holds them too (mode 0600). An existing
file is overwritten only with -force.

flags:
`

// runGenerateRegistration is `bridge generate-registration`. It returns the exit code.
func runGenerateRegistration(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("generate-registration", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), registrationUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "configuration file (default: the embedded config.example.yaml)")
	network := fs.String("network", "", "the connectors.matrix section's name (default: the first)")
	out := fs.String("out", "registration.yaml", "where to write the registration")
	force := fs.Bool("force", false, "overwrite an existing registration file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bridge generate-registration: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	raw, err := readConfigBytes(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "bridge generate-registration:", err)
		return exitConfig
	}
	// Not loadConfig: the tokens this command makes are what the section still lacks.
	c, _, problems, _ := parseConfig(raw)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p.format(displayPath(*cfgPath)))
		}
		return exitConfig
	}
	var section *matrix.Config
	for i := range c.Connectors.Matrix {
		if *network == "" || c.Connectors.Matrix[i].Network() == *network {
			section = &c.Connectors.Matrix[i]
			break
		}
	}
	if section == nil {
		fmt.Fprintf(stderr, "bridge generate-registration: %s has no connectors.matrix section %q\n", displayPath(*cfgPath), *network)
		return exitConfig
	}
	var reg []byte
	generated := section.ASToken == "" && section.HSToken == ""
	if generated {
		reg, *section, err = matrix.GenerateRegistration(*section)
	} else {
		reg, err = matrix.RegistrationYAML(*section)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bridge generate-registration:", err)
		return exitConfig
	}
	// The registration holds as_token and hs_token: written 0600 and fsynced, and with
	// -force replaced (0600 whatever the old file's mode was).
	write := keyfile.Create
	if *force {
		write = keyfile.Replace
	}
	if err := write(*out, reg); err != nil {
		hint := ""
		if errors.Is(err, os.ErrExist) {
			hint = " (-force overwrites)"
		}
		fmt.Fprintf(stderr, "bridge generate-registration: registration: %v%s\n", err, hint)
		return exitFail
	}
	fmt.Fprintf(stdout, "registration %s (mode 0600): give it to the homeserver\n", *out)
	if generated {
		// Printed once, for the operator to paste: the config file is theirs to edit.
		fmt.Fprintf(stdout, "put these into connectors.matrix (%s) and keep the file mode 0600:\n    as_token: %s\n    hs_token: %s\n",
			section.Network(), section.ASToken, section.HSToken)
	}
	return exitOK
}
