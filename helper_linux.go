package airlock

import (
	"os"

	"github.com/airlock-sandbox/airlock/internal/netns"
)

func runPlatformHelper() {
	if len(os.Args) > 1 && os.Args[1] == netns.HelperArg {
		netns.HelperMain()
	}
}
