package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds that keep an unsandboxed run harmless.
const (
	maxForks   = 2000
	maxMemory  = 512 << 20
	maxDisk    = 256 << 20
	maxOutput  = 256 << 20
	maxInotify = 1000
	maxSeconds = 10
)

func init() {
	register("G1", "g", "fork bomb", probeG1)
	register("G2", "g", "memory exhaustion", probeG2)
	register("G3", "g", "disk exhaustion", probeG3)
	register("G4", "g", "CPU time and real-time scheduling", probeG4)
	register("G5", "g", "per-user kernel quotas (inotify)", probeG5)
	register("G6", "g", "output flooding", probeG6)
	register("G7", "g", "core dumps", probeG7)
}

// probeG1 forks sleeping children until EAGAIN, maxForks or maxSeconds,
// then kills them all.
func probeG1(p *run) {
	var pids []int
	deadline := time.Now().Add(maxSeconds * time.Second)
	var err error
	for len(pids) < maxForks && time.Now().Before(deadline) {
		pid, e := rawFork(0, true)
		if e != 0 {
			err = e
			break
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
	}
	for _, pid := range pids {
		reap(pid)
	}
	p.step(fmt.Sprintf("fork x%d", len(pids)), err)
	if len(pids) >= maxForks {
		p.escape("forked %d processes without hitting a limit", len(pids))
	} else {
		p.note("stopped after %d processes", len(pids))
	}
}

// probeG2 allocates and touches memory up to maxMemory.
func probeG2(p *run) {
	var chunks [][]byte
	total := 0
	for total < maxMemory {
		b, err := unix.Mmap(-1, 0, 16<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if !p.step(fmt.Sprintf("mmap at %d MiB", total>>20), err) {
			break
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		chunks = append(chunks, b)
		total += len(b)
	}
	p.r.Attempted = p.r.Attempted[len(p.r.Attempted)-1:]
	if total >= maxMemory {
		p.escape("allocated and touched %d MiB", total>>20)
	}
	for _, c := range chunks {
		unix.Munmap(c)
	}
}

// probeG3 writes up to maxDisk into its scratch dir.
func probeG3(p *run) {
	path := filepath.Join(p.arg("scratch"), "g3-fill")
	f, err := os.Create(path)
	if !p.step("create fill file", err) {
		return
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 1<<20)
	written := 0
	for written < maxDisk {
		n, err := f.Write(buf)
		written += n
		if err != nil {
			p.step(fmt.Sprintf("write at %d MiB", written>>20), err)
			break
		}
	}
	if written >= maxDisk {
		p.step(fmt.Sprintf("write %d MiB", written>>20), nil)
		p.escape("wrote %d MiB without hitting a limit", written>>20)
	}
}

// probeG4 asks for SCHED_FIFO (and gives it back at once), then spins on
// every CPU until it has used cpu= seconds of CPU time or maxSeconds pass.
func probeG4(p *run) {
	type param struct{ prio int32 }
	prm := param{1}
	_, _, e := syscall.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_FIFO, uintptrOf(&prm))
	if p.step("sched_setscheduler(FIFO)", errOf(e)) {
		prm.prio = 0
		syscall.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, 0, 0, uintptrOf(&prm))
		p.escape("real-time scheduling granted")
	}
	emit(&p.r) // the CPU limit may kill us before the final report
	want, _ := strconv.ParseFloat(p.arg("cpu"), 64)
	if want <= 0 {
		want = 2
	}
	stop := make(chan struct{})
	for i := 0; i < runtime.NumCPU(); i++ {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	deadline := time.Now().Add(maxSeconds * time.Second)
	used := 0.0
	for time.Now().Before(deadline) && used < want {
		time.Sleep(50 * time.Millisecond)
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		used = float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	close(stop)
	p.step(fmt.Sprintf("spin %.1fs CPU", used), nil)
	if used >= want {
		p.escape("used %.1f s of CPU time without being stopped", used)
	}
}

// probeG5 takes inotify instances until the per-user quota (not its own fd
// limit) stops it: the host user's own tools then cannot get one.
func probeG5(p *run) {
	var fds []int
	var err error
	for len(fds) < maxInotify {
		fd, e := unix.InotifyInit1(unix.IN_CLOEXEC)
		if e != nil {
			err = e
			break
		}
		fds = append(fds, fd)
	}
	var nofile unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile)
	p.step(fmt.Sprintf("inotify_init1 x%d", len(fds)), err)
	quota, _ := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err == unix.EMFILE && uint64(len(fds)+8) < nofile.Cur {
		p.escape("hit the per-user inotify quota (%s) after %d instances: shared with the host user", strings.TrimSpace(string(quota)), len(fds))
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// probeG6 writes up to maxOutput bytes to stdout.
func probeG6(p *run) {
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = 'x'
	}
	buf[len(buf)-1] = '\n'
	written := 0
	for written < maxOutput {
		n, err := os.Stdout.Write(buf)
		written += n
		if err != nil {
			p.step("write stdout", err)
			break
		}
	}
	p.step(fmt.Sprintf("wrote %d MiB to stdout", written>>20), nil)
	if written >= maxOutput {
		p.escape("wrote %d bytes to stdout without being stopped", written)
	}
}

// probeG7 raises its core-dump limit (it never crashes).
func probeG7(p *run) {
	lim := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	p.step("setrlimit(CORE, inf)", unix.Setrlimit(unix.RLIMIT_CORE, &lim))
	unix.Getrlimit(unix.RLIMIT_CORE, &lim)
	if lim.Max != 0 {
		lim.Cur = lim.Max
		if p.step("setrlimit(CORE, soft=hard)", unix.Setrlimit(unix.RLIMIT_CORE, &lim)) && lim.Cur > 0 {
			p.escape("core dumps allowed (RLIMIT_CORE %d)", lim.Cur)
		}
	}
}
