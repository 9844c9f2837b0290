package seccomp

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const benchLoopsEnv = "AIRLOCK_SECCOMP_TEST_LOOPS"

func getppidLoop(n int) time.Duration {
	st := time.Now()
	for i := 0; i < n; i++ {
		unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	}
	return time.Since(st)
}

func readLoop(n int) time.Duration {
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY, 0)
	if err != nil {
		panic(err)
	}
	defer unix.Close(fd)
	var buf [64]byte
	st := time.Now()
	for i := 0; i < n; i++ {
		unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), 64)
	}
	return time.Since(st)
}

// benchChild times n getppid calls, installs the preset, times them again.
func benchChild(ctl *os.File, preset string) {
	n, _ := strconv.Atoi(os.Getenv(benchLoopsEnv))
	getppidLoop(n / 10) // warm up
	before, beforeRead := getppidLoop(n), readLoop(n)
	// "floor": a one-instruction allow-all filter, the cost of having any
	// filter at all (the kernel's seccomp entry path).
	prog := []SockFilter{ret(Allow)}
	if preset != "floor" {
		f, _ := Preset(preset)
		if os.Getenv("AIRLOCK_SECCOMP_TEST_NOTIFY") != "" {
			f = f.WithNotify()
		}
		var err error
		if prog, err = f.Compile(runtime.GOARCH); err != nil {
			panic(err)
		}
	}
	st := time.Now()
	if _, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
		panic(err)
	}
	install := time.Since(st)
	after, afterRead := getppidLoop(n), readLoop(n)
	json.NewEncoder(ctl).Encode(map[string]int64{"before": int64(before), "after": int64(after), "install": int64(install),
		"before_read": int64(beforeRead), "after_read": int64(afterRead)})
}

// BenchmarkFilterOverhead: 1M getppid and 1M 64-byte reads of /dev/zero in
// one process before and after the filter; reports ns per getppid each way
// and both ratios. "floor" is a one-instruction filter: the kernel's cost of
// having any filter.
func BenchmarkFilterOverhead(b *testing.B) {
	requireSeccomp(&testing.T{})
	for _, mode := range []string{"floor", "default", "default-notify", "strict"} {
		b.Run(mode, func(b *testing.B) {
			preset, notify := mode, ""
			if mode == "default-notify" {
				preset, notify = "default", "1"
			}
			const n = 1_000_000
			// Minimums over iterations: the machine may be shared, and the
			// least-disturbed run is the best estimate of the real cost.
			before, after, install, beforeRead, afterRead := 1e18, 1e18, 1e18, 1e18, 1e18
			for b.Loop() {
				t := &testing.T{}
				cmd, ctl := startChildEnv(t, "bench", []string{"AIRLOCK_SECCOMP_TEST_PRESET=" + preset, benchLoopsEnv + "=" + fmt.Sprint(n), "AIRLOCK_SECCOMP_TEST_NOTIFY=" + notify})
				var r map[string]int64
				if err := json.NewDecoder(ctl).Decode(&r); err != nil {
					b.Fatal(err)
				}
				cmd.Wait()
				ctl.Close()
				before = min(before, float64(r["before"])/n)
				after = min(after, float64(r["after"])/n)
				install = min(install, float64(r["install"]))
				beforeRead = min(beforeRead, float64(r["before_read"])/n)
				afterRead = min(afterRead, float64(r["after_read"])/n)
			}
			b.ReportMetric(before, "ns/call-bare")
			b.ReportMetric(after, "ns/call-filtered")
			b.ReportMetric(after/before, "ratio-getppid")
			b.ReportMetric(afterRead/beforeRead, "ratio-read64")
			b.ReportMetric(install/1e3, "µs/install")
		})
	}
}
