// Command probebin runs airlock's probes without the CLI:
// `probebin __probe ID [key=value...]` (or `probebin victim FILE`).
package main

import (
	"os"

	"github.com/airlock-sandbox/airlock/internal/probe"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "__probe" {
		args = args[1:]
	}
	os.Exit(probe.Main(args))
}
