package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	execPresetEnv = "AIRLOCK_SECCOMP_TEST_PRESET"
	execArgvEnv   = "AIRLOCK_SECCOMP_TEST_ARGV"
	execNotifyEnv = "AIRLOCK_SECCOMP_TEST_EXEC_NOTIFY"
)

// execChild installs a preset on every thread and execs argv, as the
// launcher does for the target.
func execChild() {
	var argv []string
	if err := json.Unmarshal([]byte(os.Getenv(execArgvEnv)), &argv); err != nil {
		panic(err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(127)
	}
	f, err := Preset(os.Getenv(execPresetEnv))
	if err != nil {
		panic(err)
	}
	notify := os.Getenv(execNotifyEnv) != ""
	if notify {
		f = f.WithNotify()
	}
	prog, err := f.Compile(runtime.GOARCH)
	if err != nil {
		panic(err)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AIRLOCK_SECCOMP_TEST") {
			env = append(env, e)
		}
	}
	runtime.LockOSThread()
	if notify {
		// Every Go thread gets the filter; the listener goes to the parent.
		lfd, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_TSYNC|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH|unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(126)
		}
		if err := unix.Sendmsg(3, []byte{'L'}, unix.UnixRights(lfd), nil, 0); err != nil {
			os.Exit(126)
		}
		unix.Close(lfd)
		unix.Close(3)
	} else if _, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(126)
	}
	err = unix.Exec(path, argv, env)
	fmt.Fprintln(os.Stderr, "child: exec:", err)
	os.Exit(125)
}

// runUnder runs argv in dir under preset ("" = no filter) and returns the
// combined output and error.
func runUnder(t *testing.T, preset, dir string, argv ...string) (string, error) {
	t.Helper()
	var cmd *exec.Cmd
	if preset == "" {
		cmd = exec.Command(argv[0], argv[1:]...)
	} else {
		js, _ := json.Marshal(argv)
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=exec", execPresetEnv+"="+preset, execArgvEnv+"="+string(js))
	}
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

const cProgram = `#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
static void *work(void *p) { *(int *)p = 42; return 0; }
int main(void) {
	pthread_t th; int v = 0;
	if (pthread_create(&th, 0, work, &v) != 0) { puts("pthread failed"); return 1; }
	pthread_join(th, 0);
	pid_t pid = fork();
	if (pid == 0) _exit(7);
	int st; waitpid(pid, &st, 0);
	printf("c ok %d %d\n", v, WEXITSTATUS(st));
	return 0;
}
`

// Real programs still work under the default preset (same output as
// without a filter).
func TestLiveRealProgramsDefault(t *testing.T) {
	requireSeccomp(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.c"), []byte(cProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		argv []string
		want string
	}{
		{"shell pipeline", []string{"sh", "-c", "echo hello | tr a-z A-Z; ls / >/dev/null && echo listed"}, "HELLO\nlisted\n"},
		{"python3", []string{"python3", "-c", "import subprocess,threading,socket; s=socket.socket(); s.close(); print(subprocess.check_output(['echo','py']).decode().strip())"}, "py\n"},
		{"gcc", []string{"sh", "-c", "gcc -pthread -o t t.c && ./t"}, "c ok 42 7\n"},
		{"node", []string{"node", "-e", "require('fs').readFile('/etc/hostname', (e) => console.log(e ? 'err' : 'node ok'))"}, "node ok\n"},
		{"java", []string{"java", "-XX:-UsePerfData", "-Xshare:auto", "-version"}, ""},
		{"perl", []string{"perl", "-e", "print qq(perl ok\\n)"}, "perl ok\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl, err := runUnder(t, "", dir, c.argv...)
			if err != nil {
				t.Skipf("%s does not run on this host without a filter: %v %s", c.argv[0], err, ctl)
			}
			got, err := runUnder(t, "default", dir, c.argv...)
			if err != nil {
				t.Fatalf("under default preset: %v\n%s", err, got)
			}
			if c.want != "" && got != c.want {
				t.Errorf("output %q, want %q", got, c.want)
			}
			if c.want == "" && got != ctl {
				t.Errorf("output differs from unfiltered run:\n%s\nvs\n%s", got, ctl)
			}
		})
	}
}

// Under strict, a compute program with threads runs, and fork kills it.
func TestLiveStrict(t *testing.T) {
	requireSeccomp(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc on this host")
	}
	dir := t.TempDir()
	src := `#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static void *work(void *p) { *(int *)p = 42; return 0; }
int main(int argc, char **argv) {
	pthread_t th; int v = 0;
	pthread_create(&th, 0, work, &v); pthread_join(th, 0);
	printf("threads %d\n", v); fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "fork") == 0) { fork(); puts("forked"); }
	return 0;
}
`
	os.WriteFile(filepath.Join(dir, "s.c"), []byte(src), 0o644)
	if out, err := exec.Command("gcc", "-pthread", "-o", filepath.Join(dir, "s"), filepath.Join(dir, "s.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v %s", err, out)
	}
	bin := filepath.Join(dir, "s")
	out, err := runUnder(t, "strict", dir, bin)
	if err != nil || out != "threads 42\n" {
		t.Fatalf("strict compute program: %v %q", err, out)
	}
	out, err = runUnder(t, "strict", dir, bin, "fork")
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("fork under strict: %v %q", err, out)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGSYS || strings.Contains(out, "forked") {
		t.Fatalf("fork under strict: status %v, output %q; want SIGSYS before fork", err, out)
	}
	// The same fork is fine under default.
	if out, err := runUnder(t, "default", dir, bin, "fork"); err != nil || !strings.Contains(out, "forked") {
		t.Fatalf("fork under default: %v %q", err, out)
	}
}

const cNotifyProgram = `#include <pthread.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
static void *work(void *p) { return p; }
int main(void) {
	for (int i = 0; i < 4; i++) { pthread_t th; pthread_create(&th, 0, work, 0); pthread_join(th, 0); }
	long r = syscall(SYS_keyctl, 0, -3, 0);
	printf("keyctl %ld %s\\n", r, r < 0 ? strerror(errno) : "");
	r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0);
	printf("ptrace %ld %s\\n", r, r < 0 ? strerror(errno) : "");
	return 0;
}
`

// runNotified runs argv under the notifying default preset with the
// listener served here; it returns output and the denial counts.
func runNotified(t *testing.T, dir string, argv ...string) (string, map[string]int, error) {
	t.Helper()
	js, _ := json.Marshal(argv)
	f, _ := Preset("default")
	nf := f.WithNotify()
	var out bytes.Buffer
	cmd, ctl := startChildCmd(t, "exec", []string{execPresetEnv + "=default", execArgvEnv + "=" + string(js), execNotifyEnv + "=1"},
		func(c *exec.Cmd) { c.Dir = dir; c.Stdout, c.Stderr = &out, &out })
	lfd := recvFd(t, ctl)
	counts := map[string]int{}
	done := make(chan error, 1)
	go func() { done <- Serve(lfd, nf, runtime.GOARCH, func(name string, _ [6]uint64) { counts[name]++ }) }()
	err := cmd.Wait()
	if serr := <-done; serr != nil {
		t.Fatalf("Serve: %v", serr)
	}
	return out.String(), counts, err
}

// Real programs under the notifying filter: same output, and the broker
// sees exactly the denials (with ordinary programs' own probes listed).
func TestLiveNotifyRealPrograms(t *testing.T) {
	requireSeccomp(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "n.c"), []byte(cNotifyProgram), 0o644)
	if out, err := exec.Command("gcc", "-pthread", "-o", filepath.Join(dir, "n"), filepath.Join(dir, "n.c")).CombinedOutput(); err != nil {
		t.Skipf("gcc: %v %s", err, out)
	}
	out, counts, err := runNotified(t, dir, filepath.Join(dir, "n"))
	if err != nil {
		t.Fatalf("%v %q", err, out)
	}
	if !strings.Contains(out, "keyctl -1 Operation not permitted") || !strings.Contains(out, "ptrace -1 Operation not permitted") {
		t.Errorf("output %q", out)
	}
	if counts["keyctl"] != 1 || counts["ptrace"] != 1 {
		t.Errorf("broker counts %v, want keyctl 1 and ptrace 1", counts)
	}
	t.Logf("C program: denials %v", counts)
	for _, argv := range [][]string{
		{"sh", "-c", "echo hello | tr a-z A-Z"},
		{"python3", "-c", "import subprocess; print(subprocess.check_output(['echo','py']).decode().strip())"},
		{"node", "-e", "console.log('node ok')"},
		{"java", "-XX:-UsePerfData", "-version"},
	} {
		if _, err := runUnder(t, "", dir, argv...); err != nil {
			t.Logf("%s: not runnable here unfiltered, skipped", argv[0])
			continue
		}
		out, counts, err := runNotified(t, dir, argv...)
		if err != nil {
			t.Errorf("%s under notify: %v %q", argv[0], err, out)
		}
		t.Logf("%s: denials %v", argv[0], counts)
	}
}
