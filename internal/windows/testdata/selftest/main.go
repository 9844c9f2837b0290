// Command selftest runs airlock's Windows selftest under Wine for
// selftest_wine_linux_test.go: bare (probe validation), with the default
// strict policy, and best-effort. Plumbing only: Wine enforces nothing.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
	"github.com/airlock-sandbox/airlock/internal/selftest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(probe.Main(os.Args[2:]))
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for _, mode := range []string{"bare", "strict", "best-effort"} {
		opts := selftest.Options{Binary: exe, Sandboxed: mode != "bare"}
		if mode == "best-effort" {
			opts.Adjust = func(p *airlock.Policy) { p.Enforce = airlock.BestEffort }
		}
		sc, err := selftest.Run(opts)
		line := struct {
			Mode      string              `json:"mode"`
			Err       string              `json:"err,omitempty"`
			Scorecard *selftest.Scorecard `json:"scorecard,omitempty"`
		}{Mode: mode, Scorecard: sc}
		if err != nil {
			line.Err = err.Error()
		}
		b, _ := json.Marshal(line)
		fmt.Println(string(b))
	}
}
