// Command driver runs target.exe through airlock's Windows backend under
// Wine and prints one JSON line per scenario for wine_linux_test.go.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-sandbox/airlock"
	xwin "golang.org/x/sys/windows"
)

type line struct {
	Scenario string            `json:"scenario"`
	Err      string            `json:"err,omitempty"`
	NotEnf   bool              `json:"not_enforceable,omitempty"`
	Result   *airlock.Result   `json:"result,omitempty"`
	Stdout   string            `json:"stdout"`
	Stderr   string            `json:"stderr"`
	Alive    []int             `json:"alive,omitempty"`
	Pids     []int             `json:"pids,omitempty"`
	Features *airlock.Features `json:"features,omitempty"`
}

func policy(dir string, enforce airlock.Enforcement) airlock.Policy {
	return airlock.Policy{
		Mounts:  []airlock.Mount{airlock.ReadOnly(dir, dir)},
		Workdir: dir,
		Env:     []string{`PATH=C:\windows\system32;C:\windows`, `SystemRoot=C:\windows`, "LANG=C"},
		Enforce: enforce,
		Limits:  airlock.Limits{Procs: 10, Memory: 256 << 20, CPUTime: time.Minute},
	}
}

func alive(pid int) bool {
	h, err := xwin.OpenProcess(xwin.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer xwin.CloseHandle(h)
	var code uint32
	return xwin.GetExitCodeProcess(h, &code) == nil && code == 259
}

// orphan starts a tree of three descendants and exits without Wait, as a
// crashing broker would; the job must die with it (kill on close).
func orphan(target string) {
	dir := filepath.Dir(target)
	pr, pw, _ := os.Pipe()
	c := airlock.Command(policy(dir, airlock.BestEffort), target, "tree", "3", "wait")
	c.Stdout = pw
	if err := c.Start(); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	pw.Close()
	sc := bufio.NewScanner(pr)
	var pids []int
	for len(pids) < 3 && sc.Scan() {
		if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			pids = append(pids, pid)
		}
	}
	json.NewEncoder(os.Stdout).Encode(pids)
	os.Exit(0)
}

func main() {
	switch os.Args[1] {
	case "orphan":
		orphan(os.Args[2])
		return
	case "alive":
		var live []int
		for _, a := range os.Args[2:] {
			if pid, err := strconv.Atoi(a); err == nil && alive(pid) {
				live = append(live, pid)
			}
		}
		json.NewEncoder(os.Stdout).Encode(live)
		return
	}
	target := os.Args[1]
	dir := filepath.Dir(target)
	out := json.NewEncoder(os.Stdout)
	run := func(name string, p airlock.Policy, stdin string, args ...string) line {
		c := airlock.Command(p, target, args...)
		var so, se bytes.Buffer
		c.Stdout, c.Stderr = &so, &se
		if stdin != "" {
			c.Stdin = strings.NewReader(stdin)
		}
		err := c.Run()
		l := line{Scenario: name, Result: c.Result, Stdout: so.String(), Stderr: se.String()}
		var ee *airlock.ExitError
		if err != nil && !errors.As(err, &ee) {
			l.Err = err.Error()
			l.NotEnf = errors.Is(err, airlock.ErrNotEnforceable)
		}
		return l
	}
	be := policy(dir, airlock.BestEffort)
	f := airlock.Probe()
	out.Encode(line{Scenario: "probe", Features: &f})
	out.Encode(run("strict", policy(dir, airlock.Strict), "", "exit", "0"))
	out.Encode(run("exit", be, "", "exit", "3"))
	out.Encode(run("ok", be, "", "exit", "0"))
	out.Encode(run("args", be, "", "args", "", "a b", `x\"y`, `tail\`, `"q"`, `C:\dir with space\`))
	one := be
	one.Limits.Procs = 1 // detached, child-process policy attribute
	out.Encode(run("procs1", one, "", "exit", "0"))
	os.Setenv("AIRLOCK_CANARY", "leaked")
	out.Encode(run("env", be, "", "env"))
	out.Encode(run("stdin", be, "piped input\n", "cat"))
	wall := be
	wall.Limits.WallTime = 5 * time.Second
	for _, mode := range []string{"wait", "exit"} {
		name := "tree-" + mode
		if mode == "wait" {
			name = "wall-tree"
		}
		l := run(name, wall, "", "tree", "3", mode)
		for _, s := range strings.Fields(l.Stdout) {
			if pid, err := strconv.Atoi(s); err == nil {
				l.Pids = append(l.Pids, pid)
				if alive(pid) {
					l.Alive = append(l.Alive, pid)
				}
			}
		}
		out.Encode(l)
	}
	fmt.Fprintln(os.Stderr, "driver done")
}
