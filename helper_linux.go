package airlock

import (
	"os"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
	"github.com/airlock-sandbox/airlock/internal/netns"
)

func runPlatformHelper() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case netns.HelperArg:
			netns.HelperMain()
		case cgroup.JanitorArg:
			cgroup.JanitorMain(os.Args[2:])
		}
	}
	cgroup.EnableJanitor()
	helperRegistered = true
}
