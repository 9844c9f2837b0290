package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/airlock-sandbox/airlock"
)

// listFlag collects a repeatable flag, applying each value as it comes so
// flags keep their command-line order.
type listFlag func(string) error

func (f listFlag) String() string     { return "" }
func (f listFlag) Set(v string) error { return f(v) }

func runMain(args []string) int {
	// A signal to airlock stops the sandbox (and restores the terminal).
	// The registration starts a thread; it is made beside the policy's
	// set-up, and never undone: undoing it waits for the signal loop, and
	// the process ends with the run.
	ctx, cancel := context.WithCancel(context.Background())
	signalsReady := make(chan struct{})
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		close(signalsReady)
		<-sigs
		cancel()
	}()
	p := airlock.DefaultPolicy()
	s := &settings{p: &p}
	fs := flag.NewFlagSet("airlock run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		policyPath, resultPath, resultFormat, workdir, syscallsPreset string
		printPolicy, verbose, bestEffort                              bool
		uid, gid                                                      int
	)
	// The policy file applies first, flags on top: find it before parsing
	// (the parse below checks that it found the same).
	policies := 0
	for i, a := range args {
		if a == "--" {
			break
		}
		v, ok := strings.CutPrefix(a, "--policy=")
		if !ok {
			v, ok = strings.CutPrefix(a, "-policy=")
		}
		if ok {
			policyPath = v
			policies++
		} else if (a == "--policy" || a == "-policy") && i+1 < len(args) {
			policyPath = args[i+1]
			policies++
		}
	}
	if policies > 1 {
		return fatalf("--policy: given more than once")
	}
	if policies == 1 && policyPath == "" {
		return fatalf("--policy: empty path")
	}
	prescanned := policyPath
	if policyPath != "" {
		if err := loadPolicyFile(policyPath, &p); err != nil {
			return fatalf("policy %v", err)
		}
	}
	fs.StringVar(&policyPath, "policy", policyPath, "TOML policy file (flags override it)")
	fs.Var(listFlag(func(v string) error { return s.bind(v, false) }), "ro", "bind PATH[:DEST] read-only (repeatable)")
	fs.Var(listFlag(func(v string) error { return s.bind(v, true) }), "rw", "bind PATH[:DEST] writable (repeatable)")
	fs.Var(listFlag(s.tmpfs), "tmpfs", "mount an empty tmpfs at DEST[:SIZE] (repeatable)")
	fs.StringVar(&workdir, "workdir", "", "working directory inside the sandbox")
	fs.StringVar(&p.Hostname, "hostname", p.Hostname, "hostname inside the sandbox")
	fs.Var(listFlag(s.env), "env", "set KEY=VALUE, or pass KEY from the host (repeatable)")
	fs.Var(listFlag(s.net), "net", "network: none, host, or allow=HOST[:PORT],... (repeatable)")
	fs.Var(listFlag(func(v string) error {
		p.Network.Deny = append(p.Network.Deny, strings.Split(v, ",")...)
		return nil
	}), "net-deny", "deny these destinations even if allowed (repeatable)")
	fs.BoolVar(&p.Network.AllowPrivate, "net-allow-private", p.Network.AllowPrivate, "allow loopback, link-local and private destinations")
	fs.Var(listFlag(func(v string) error { p.Network.Forward = append(p.Network.Forward, v); return nil }), "net-forward", "make host ADDR:PORT reachable inside (repeatable)")
	fs.Var(listFlag(func(v string) error { p.Network.Publish = append(p.Network.Publish, v); return nil }), "publish", "make sandbox PORT reachable from the host (repeatable)")
	fs.Var(listFlag(s.durationTo(&p.Limits.WallTime)), "timeout", "wall-clock limit, e.g. 10s")
	fs.Var(listFlag(s.durationTo(&p.Limits.CPUTime)), "cpu-time", "CPU time limit of the whole tree, e.g. 2s")
	fs.Var(listFlag(s.sizeTo(&p.Limits.Memory)), "memory", "memory limit of the whole tree, e.g. 256M")
	fs.Var(listFlag(intTo(&p.Limits.Procs)), "procs", "most tasks in the tree")
	fs.Var(listFlag(s.sizeTo(&p.Limits.Output)), "output", "most bytes of stdout+stderr")
	fs.Var(listFlag(s.sizeTo(&p.Limits.FileSize)), "fsize", "largest file the program may write")
	fs.Var(listFlag(s.sizeTo(&p.Limits.TmpfsSize)), "tmpfs-size", "default size of writable tmpfs mounts")
	fs.Var(listFlag(intTo(&p.Limits.OpenFiles)), "nofile", "most open files per process")
	fs.Var(listFlag(s.sizeTo(&p.Limits.Stack)), "stack", "stack size limit")
	fs.Var(listFlag(func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return fmt.Errorf("%q: want a positive number of CPUs like 1.5", v)
		}
		p.Limits.CPUs = f
		return nil
	}), "cpus", "CPU bandwidth, e.g. 1.5")
	fs.Var(listFlag(func(v string) error {
		for _, part := range strings.Split(v, ";") {
			k, list, ok := strings.Cut(part, "=")
			if !ok || (k != "allow" && k != "deny") {
				return fmt.Errorf("%q: want allow=NAME,... or deny=NAME,...", v)
			}
			names := strings.Split(list, ",")
			if k == "allow" {
				p.Syscalls.Allow = append(p.Syscalls.Allow, names...)
			} else {
				p.Syscalls.Deny = append(p.Syscalls.Deny, names...)
			}
		}
		return nil
	}), "syscalls", "adjust the syscall preset: allow=NAME,... or deny=NAME,...")
	fs.StringVar(&syscallsPreset, "syscalls-preset", "", "syscall preset: default, strict or permissive")
	fs.StringVar(&resultPath, "result", "", "write the result as JSON to FILE (- for stderr)")
	fs.StringVar(&resultFormat, "result-format", "json", "result format: json or isolate")
	fs.BoolVar(&printPolicy, "print-policy", false, "print the effective policy and exit")
	var printPlan bool
	fs.BoolVar(&printPlan, "print-plan", false, "print the steps that would build the sandbox and exit")
	fs.Var(listFlag(func(v string) error { p.Require = append(p.Require, v); return nil }), "require", "refuse to run without this second-wall mechanism: landlock")
	fs.BoolVar(&bestEffort, "best-effort", false, "run even when a protection is unavailable (reported in the result)")
	fs.BoolVar(&verbose, "v", false, "print what was enforced and each denial")
	fs.IntVar(&uid, "uid", 0, "host uid of the sandbox user when airlock runs as root (default 65534)")
	fs.IntVar(&gid, "gid", 0, "host gid of the sandbox user when airlock runs as root (default 65534)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Println("usage: airlock run [flags] -- COMMAND [ARGS...]")
			fs.PrintDefaults()
			return 0
		}
		return fatalf("run: %v", err)
	}
	if policyPath != prescanned {
		return fatalf("--policy %q: give it as --policy FILE or --policy=FILE", policyPath)
	}
	if workdir != "" {
		p.Workdir = workdir
	}
	if syscallsPreset != "" {
		p.Syscalls.Preset = syscallsPreset
	}
	if bestEffort {
		p.Enforce = airlock.BestEffort
	}
	if uid != 0 {
		p.Linux.HostUID = uid
	}
	if gid != 0 {
		p.Linux.HostGID = gid
	}
	switch resultFormat {
	case "json", "isolate":
	default:
		return fatalf("run: -result-format %q: want json or isolate", resultFormat)
	}
	if err := p.Validate(); err != nil {
		return fatalf("policy: %v", err)
	}
	if printPolicy {
		fmt.Print(printPolicyText(&p))
		return 0
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return fatalf("run: no command given (usage: airlock run [flags] -- COMMAND [ARGS...])")
	}
	if printPlan {
		plan, err := airlock.Command(p, argv[0], argv[1:]...).LaunchPlan()
		if err != nil {
			return fatalf("%v", err)
		}
		fmt.Print(plan)
		return 0
	}
	// The result file is opened before the run: a judge must not learn
	// only afterwards that the verdict had nowhere to go.
	var resultFile *os.File
	if resultPath != "" && resultPath != "-" {
		f, err := os.OpenFile(resultPath, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fatalf("--result: %v", err)
		}
		defer f.Close()
		resultFile = f
	}
	if p.Network.Mode == airlock.NetHost {
		fmt.Fprintln(os.Stderr, "airlock: warning: --net host: the sandbox shares this host's network")
	}

	<-signalsReady
	cmd := airlock.CommandContext(ctx, p, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if verbose {
		cmd.OnDenial = func(d airlock.Denial) {
			if d.Count == 1 {
				fmt.Fprintf(os.Stderr, "airlock: denied %s %s (%s)\r\n", d.Kind, printable(d.Name), printable(d.Detail))
			}
		}
		cmd.OnConnection = func(c airlock.Connection) {
			verdict := "allowed"
			if !c.Allowed {
				verdict = "denied"
			}
			fmt.Fprintf(os.Stderr, "airlock: net %s %s (%s) port %d %s\r\n", verdict, printable(c.Host), c.IP, c.Port, printable(c.Reason))
		}
	}
	restore := rawTerminal(os.Stdin)
	err := cmd.Run()
	restore()
	res := cmd.Result
	if res != nil {
		// A missing or weakened protection is always announced.
		for _, pr := range res.Enforced {
			if pr.State != airlock.Enforced && !verbose {
				fmt.Fprintf(os.Stderr, "airlock: %s %s: %s\n", pr.Name, pr.State, pr.Detail)
			}
		}
	}
	if verbose && res != nil {
		fmt.Fprint(os.Stderr, "airlock: enforced:\n"+indent(res.Enforced.String()))
		for _, d := range res.Denials {
			fmt.Fprintf(os.Stderr, "airlock: denied %s %s: %d time(s)\n", d.Kind, d.Name, d.Count)
		}
	}
	if resultPath != "" && res != nil {
		if werr := writeResult(resultFile, resultFormat, res); werr != nil {
			return fatalf("result: %v", werr)
		}
	}
	var se *airlock.SetupError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &se):
		msg := se.Error()
		if strings.HasPrefix(se.Stage, "exec ") && errors.Is(se.Err, syscall.ENOENT) {
			if interp := missingInterpreter(argv[0]); interp != "" {
				msg += " (the script's interpreter " + interp + " is not in the sandbox)"
			}
		}
		fmt.Fprintf(os.Stderr, "airlock: %s\n", printable(msg))
		if strings.HasPrefix(se.Stage, "exec ") {
			if errors.Is(se.Err, syscall.ENOENT) {
				return 127
			}
			if errors.Is(se.Err, syscall.EACCES) {
				return 126
			}
		}
		return exitSetup
	case res != nil && res.Status != airlock.StatusSetupError:
		if res.Status != airlock.OK && res.Status != airlock.NonZeroExit && res.Status != airlock.Signaled {
			fmt.Fprintf(os.Stderr, "airlock: %s\n", res.Status)
		}
		if res.ExitCode == 0 {
			return 1
		}
		return res.ExitCode
	default:
		fmt.Fprintf(os.Stderr, "airlock: %v\n", err)
		return exitSetup
	}
}

func intTo(n *int) func(string) error {
	return func(v string) error {
		x, err := strconv.Atoi(v)
		if err != nil || x <= 0 {
			return fmt.Errorf("%q: want a positive integer", v)
		}
		*n = x
		return nil
	}
}

// writeResult writes res to f, or to stderr when f is nil.
func writeResult(f *os.File, format string, res *airlock.Result) error {
	var b []byte
	if format == "isolate" {
		b = []byte(res.Isolate())
	} else {
		var err error
		if b, err = json.MarshalIndent(res, "", "  "); err != nil {
			return err
		}
		b = append(b, '\n')
	}
	if f == nil {
		_, err := os.Stderr.Write(b)
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Close()
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func printPolicyText(p *airlock.Policy) string { return printPolicy(p) }

// printable escapes what is not printable ASCII in text the sandbox
// chose (a host name, a path), so that it cannot move the cursor, recolour
// or forge airlock's own lines on the user's terminal.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// missingInterpreter returns the #! interpreter of the script prog names
// on this host when that interpreter does not exist here, or "": exec
// reports a missing interpreter as the script itself missing.
func missingInterpreter(prog string) string {
	if !strings.Contains(prog, "/") {
		return ""
	}
	f, err := os.Open(prog)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 256)
	n, _ := io.ReadFull(f, b)
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return ""
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return ""
	}
	if _, err := os.Stat(fields[0]); err == nil {
		return ""
	}
	return fields[0]
}
