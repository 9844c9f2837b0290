package probe

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// victimSignals are the signals the probes send to VICTIM (one per route).
var victimSignals = []os.Signal{
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGALRM,
	syscall.SIGIO, syscall.SIGWINCH, syscall.SIGTERM, syscall.SIGINT,
}

func init() {
	// `__probe victim FILE`: an outside process that appends the name of
	// every signal it receives to FILE. Bounded to 10 minutes.
	helpers["victim"] = func(rest []string, _ map[string]string) int {
		if len(rest) == 0 {
			return 2
		}
		f, err := os.OpenFile(rest[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "victim:", err)
			return 1
		}
		ch := make(chan os.Signal, 64)
		signal.Notify(ch, victimSignals...)
		fmt.Println("ready")
		deadline := time.After(10 * time.Minute)
		for {
			select {
			case s := <-ch:
				fmt.Fprintln(f, unix.SignalName(s.(syscall.Signal)))
			case <-deadline:
				return 0
			}
		}
	}
}
