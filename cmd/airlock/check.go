package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/airlock-sandbox/airlock/internal/probe"
	"github.com/airlock-sandbox/airlock/internal/selftest"

	"github.com/airlock-sandbox/airlock"
)

func checkMain(args []string) int {
	fs := flag.NewFlagSet("airlock check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if code, done := parseSubcommand(fs, args); done {
		return code
	}
	f := airlock.Probe()
	ok := f.DefaultEnforceable()
	if *asJSON {
		b, _ := json.MarshalIndent(f, "", "  ")
		fmt.Println(string(b))
	} else {
		for _, it := range f.Items {
			mark := "ok"
			if !it.Available {
				mark = "missing"
				if it.Required {
					mark = "MISSING"
				}
			}
			fmt.Printf("%-7s %-28s %s\n", mark, it.Name, it.Detail)
			if !it.Available {
				if it.Lost != "" {
					fmt.Printf("        lost: %s\n", it.Lost)
				}
				if it.Fix != "" {
					fmt.Printf("        fix:  %s\n", it.Fix)
				}
			}
		}
		if ok {
			fmt.Println("verdict: the default policy can be fully enforced on this host")
		} else {
			fmt.Println("verdict: the default policy cannot be fully enforced here; run with --best-effort to degrade, or apply the fixes above")
		}
	}
	if !ok {
		return 1
	}
	return 0
}

func selftestMain(args []string) int {
	fs := flag.NewFlagSet("airlock selftest", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	only := fs.String("only", "", "comma-separated probe ids to run (default: all)")
	if code, done := parseSubcommand(fs, args); done {
		return code
	}
	exe, err := os.Executable()
	if err != nil {
		return fatalf("selftest: %v", err)
	}
	opts := selftest.Options{Binary: exe, Sandboxed: true, JSON: *asJSON}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	sc, err := selftest.Run(opts)
	if err != nil {
		return fatalf("selftest: %v", err)
	}
	if *asJSON {
		b, err := sc.JSON()
		if err != nil {
			return fatalf("selftest: %v", err)
		}
		fmt.Println(string(b))
	} else {
		sc.Print(os.Stdout)
	}
	if sc.Escaped()+sc.Errors() > 0 {
		return 1
	}
	return 0
}

func init() {
	hidden["__probe"] = probe.Main
}

// parseSubcommand parses a subcommand's flags: -h prints its flags and
// ends with 0; a bad flag or a stray argument is one line and exit 125.
func parseSubcommand(fs *flag.FlagSet, args []string) (code int, done bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0, true
		}
		return fatalf("%s: %v", strings.TrimPrefix(fs.Name(), "airlock "), err), true
	}
	if fs.NArg() > 0 {
		return fatalf("%s: unexpected argument %q", strings.TrimPrefix(fs.Name(), "airlock "), fs.Arg(0)), true
	}
	return 0, false
}
