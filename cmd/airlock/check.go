package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/airlock-sandbox/airlock"
)

func checkMain(args []string) int {
	fs := flag.NewFlagSet("airlock check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return 2
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
	fmt.Fprintln(os.Stderr, "airlock: selftest: not built into this binary yet")
	return exitSetup
}
