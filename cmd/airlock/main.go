// Command airlock runs untrusted programs in a sandbox.
//
//	airlock run [flags] -- COMMAND [ARGS...]
//	airlock check
//	airlock selftest
package main

import (
	"fmt"
	"os"

	"github.com/airlock-sandbox/airlock"
)

const usage = `usage: airlock COMMAND [flags]

commands:
  run [flags] -- CMD [ARGS...]   run CMD in a sandbox (airlock run -h for flags)
  check [--json]                 what this host can enforce
  selftest [--json]              attack the sandbox on this host and score it
  version                        print the version
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitSetup is airlock's own failure: bad flag, bad policy, setup error.
const exitSetup = 125

func main() {
	airlock.RunHelper()
	if len(os.Args) > 1 {
		if h, ok := hidden[os.Args[1]]; ok {
			os.Exit(h(os.Args[2:]))
		}
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "run":
		code = runMain(os.Args[2:])
	case "check":
		code = checkMain(os.Args[2:])
	case "selftest":
		code = selftestMain(os.Args[2:])
	case "version", "--version":
		fmt.Println("airlock", version)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		code = fatalf("unknown command %q (commands: run, check, selftest, version, help)", os.Args[1])
	}
	os.Exit(code)
}

// hidden are internal entry points: the airlock binary re-executed for a
// helper role. They are not part of the CLI contract.
var hidden = map[string]func([]string) int{}

func fatalf(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "airlock: "+format+"\n", a...)
	return exitSetup
}
