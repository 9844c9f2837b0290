package airlock_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock"
)

// warmLimitsPolicy is a judge's repeated policy: every run of it after the
// second finds a sandbox made ahead, in its group.
func warmLimitsPolicy() airlock.Policy {
	p := airlock.DefaultPolicy()
	p.Workdir = "/"
	p.Enforce = airlock.BestEffort
	p.Limits = airlock.Limits{Memory: 64 << 20, Procs: 16, CPUTime: time.Second, WallTime: 20 * time.Second}
	return p
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// brokerMain is the test binary as a library user's program
// (AIRLOCK_TEST_BROKER=kill|exit): it runs a limited policy until a
// sandbox waits ahead in its group, says "ready", then waits to be killed
// or exits as soon as told to.
func brokerMain(mode string) int {
	if mode == "closed-stdio" {
		return closedStdioBroker()
	}
	p := warmLimitsPolicy()
	for i := 0; i < 3; i++ {
		if err := airlock.Command(p, "true").Run(); err != nil {
			fmt.Println("run:", err)
			return 1
		}
	}
	if !waitFor(5*time.Second, func() bool { return len(brokerGroups(os.Getpid())) > 0 }) {
		fmt.Println("no group made ahead")
		return 1
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	if mode == "exit" {
		return 0
	}
	select {}
}

// janitorOf finds the janitor process of broker pid (0 if none).
func janitorOf(broker int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 3 && args[1] == "__airlock-cgroup-janitor" && args[2] == strconv.Itoa(broker) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}

// A group made ahead for a warm sandbox outlives no broker: when the
// broker is SIGKILLed, or exits without a word as a library user's program
// does, its janitor kills what is inside, removes the groups and exits.
func TestJanitorRemovesGroupsOfEndedBroker(t *testing.T) {
	if !privileged() {
		t.Skip("needs cgroup delegation (this user cannot create cgroups here): no group is made ahead")
	}
	for _, mode := range []string{"kill", "exit"} {
		t.Run(mode, func(t *testing.T) {
			self, _ := os.Executable()
			cmd := exec.Command(self, "-test.run", "^$")
			cmd.Env = append(os.Environ(), "AIRLOCK_TEST_BROKER="+mode)
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			line, _ := bufio.NewReader(out).ReadString('\n')
			if line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("broker: %q", line)
			}
			broker := cmd.Process.Pid
			groups := brokerGroups(broker)
			janitor := janitorOf(broker)
			if len(groups) == 0 || janitor == 0 {
				t.Fatalf("groups made ahead %v, janitor pid %d: want both", groups, janitor)
			}
			if mode == "kill" {
				cmd.Process.Signal(syscall.SIGKILL)
			} else {
				in.Write([]byte("\n"))
			}
			cmd.Wait()
			ended := time.Now()
			if !waitFor(5*time.Second, func() bool { return len(brokerGroups(broker)) == 0 }) {
				t.Errorf("groups left behind: %v", brokerGroups(broker))
			}
			t.Logf("%d group directories removed %v after the broker ended", len(groups), time.Since(ended))
			if !waitFor(5*time.Second, func() bool { return janitorOf(broker) == 0 }) {
				t.Errorf("janitor %d still running", janitor)
			}
		})
	}
}

// Runs on a sandbox made ahead in its group are limited like any other:
// the verdicts come from that group's evidence, and the run consumed it.
func TestLimitsOnSandboxMadeAhead(t *testing.T) {
	if !privileged() {
		t.Skip("needs cgroup delegation (this user cannot create cgroups here): no group is made ahead")
	}
	p := warmLimitsPolicy()
	for i := 0; i < 3; i++ {
		if _, _, err := run(t, p, "true"); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, script string
		want         []airlock.Status
		check        func(*airlock.Result) string
	}{
		{"memory", "python3 -c 'x = bytearray(400 << 20); x[::4096] = b\"x\" * len(x[::4096])'", []airlock.Status{airlock.MemoryLimit}, nil},
		{"cpu time", "while :; do :; done", []airlock.Status{airlock.TimeLimit}, func(r *airlock.Result) string {
			if r.CPUTime < 900*time.Millisecond || r.CPUTime > 1100*time.Millisecond {
				return fmt.Sprintf("cpu time %v, want 1s +-10%%", r.CPUTime)
			}
			return ""
		}},
		{"processes", "for i in $(seq 60); do sleep 3 & done; wait", []airlock.Status{airlock.ProcessLimit, airlock.NonZeroExit, airlock.OK}, func(r *airlock.Result) string {
			if r.ProcsPeak < 10 || r.ProcsPeak > 16 {
				return fmt.Sprintf("procs peak %d, want the group's count up to the limit 16", r.ProcsPeak)
			}
			return ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Ready when the waiting target has joined its group.
			var ahead []string
			if !waitFor(5*time.Second, func() bool {
				ahead = nil
				for _, g := range brokerGroups(os.Getpid()) {
					if b, _ := os.ReadFile(g + "/cgroup.procs"); len(b) > 0 {
						ahead = append(ahead, g)
					}
				}
				return len(ahead) > 0
			}) {
				t.Fatal("no sandbox waits in a group made ahead for the repeated policy")
			}
			_, r, _ := run(t, p, c.script)
			if !slices.Contains(c.want, r.Status) {
				t.Fatalf("status %s (exit %d %s), want %s", r.Status, r.ExitCode, r.Signal, c.want)
			}
			if c.check != nil {
				if msg := c.check(r); msg != "" {
					t.Error(msg)
				}
			}
			if !waitFor(2*time.Second, func() bool { return !exists(ahead[0]) }) {
				t.Errorf("the group made ahead (%s) was not the run's", ahead[0])
			}
		})
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// closedStdioBroker runs one limited program from a broker whose fds 0-2
// are closed, so the group's files open as low fds, and writes the
// verdict to AIRLOCK_TEST_OUT.
func closedStdioBroker() int {
	out, err := os.Create(os.Getenv("AIRLOCK_TEST_OUT"))
	if err != nil {
		return 1
	}
	defer out.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 1
	}
	for fd := 0; fd < 3; fd++ {
		syscall.Close(fd)
	}
	p := warmLimitsPolicy()
	c := airlock.Command(p, "python3", "-c", "x = bytearray(400 << 20); x[::4096] = b'x' * len(x[::4096])")
	c.Stdin, c.Stdout, c.Stderr = null, null, null // 0-2 stay free for the group's files
	c.Run()
	fmt.Fprintln(out, c.Result.Status)
	return 0
}

// A broker run with stdin, stdout and stderr closed (a daemon) still puts
// the program in its group: the group's files open as fds 0-2 there, and
// the sandbox's stdio must not take their place.
func TestLimitsFromBrokerWithClosedStdio(t *testing.T) {
	if !privileged() {
		t.Skip("needs cgroup delegation (this user cannot create cgroups here): the limit would be an rlimit")
	}
	self, _ := os.Executable()
	res := filepath.Join(t.TempDir(), "status")
	cmd := exec.Command(self, "-test.run", "^$")
	cmd.Env = append(os.Environ(), "AIRLOCK_TEST_BROKER=closed-stdio", "AIRLOCK_TEST_OUT="+res)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("broker: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(res)
	if got := strings.TrimSpace(string(b)); got != string(airlock.MemoryLimit) {
		t.Fatalf("400 MB under a 64 MB limit from a broker without stdio: %q, want %s", got, airlock.MemoryLimit)
	}
}
