package airlock

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status is the verdict of one sandboxed run, decided from the kernel's own
// evidence (exit status, cgroup events, rlimit signals, broker counters).
type Status string

const (
	OK            Status = "OK"
	NonZeroExit   Status = "NonZeroExit"
	Signaled      Status = "Signaled"
	TimeLimit     Status = "TimeLimit" // CPU time
	WallTimeLimit Status = "WallTimeLimit"
	MemoryLimit   Status = "MemoryLimit"
	OutputLimit   Status = "OutputLimit"
	FileSizeLimit Status = "FileSizeLimit"
	ProcessLimit  Status = "ProcessLimit"
	Violation     Status = "Violation"
	// StatusSetupError: the sandbox could not be built (see *SetupError).
	StatusSetupError Status = "SetupError"
)

// ProtectionState says whether a protection was in force for a run.
type ProtectionState string

const (
	Enforced ProtectionState = "enforced"
	// Degraded means the protection is in force only approximately or
	// partly; Detail says how.
	Degraded ProtectionState = "degraded"
	// Off means the policy asked for no protection here (e.g. --net host)
	// or the host lacks it and the policy allowed running without it.
	Off ProtectionState = "off"
)

// Protection is one line of a Report.
type Protection struct {
	Name      string          `json:"name"`
	Mechanism string          `json:"mechanism"`
	State     ProtectionState `json:"state"`
	Detail    string          `json:"detail,omitempty"`
}

// Report lists what was enforced for a run and by which mechanism.
type Report []Protection

func (r *Report) add(name, mechanism string, state ProtectionState, detail string) {
	*r = append(*r, Protection{Name: name, Mechanism: mechanism, State: state, Detail: detail})
}

// Lookup returns the protection named name.
func (r Report) Lookup(name string) (Protection, bool) {
	for _, p := range r {
		if p.Name == name {
			return p, true
		}
	}
	return Protection{}, false
}

// String renders the report one protection a line.
func (r Report) String() string {
	var b strings.Builder
	for _, p := range r {
		fmt.Fprintf(&b, "%-12s %-9s %s", p.Name, p.State, p.Mechanism)
		if p.Detail != "" {
			fmt.Fprintf(&b, " (%s)", p.Detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Denial is one kind of operation the sandbox refused, with how often.
type Denial struct {
	Kind   string `json:"kind"` // "syscall", "network", ...
	Name   string `json:"name"`
	Count  int    `json:"count"`
	Detail string `json:"detail,omitempty"`
}

// Connection is one network connection attempt seen by the broker.
type Connection struct {
	Host     string `json:"host,omitempty"`
	IP       string `json:"ip,omitempty"`
	Port     int    `json:"port"`
	Allowed  bool   `json:"allowed"`
	Reason   string `json:"reason,omitempty"`
	BytesOut int64  `json:"bytes_out"`
	BytesIn  int64  `json:"bytes_in"`
}

// Result describes a finished run. It is always filled after Wait, also
// when the sandbox could not be set up (Status SetupError).
type Result struct {
	Status      Status
	ExitCode    int
	Signal      string
	CPUTime     time.Duration
	WallTime    time.Duration
	MemoryPeak  uint64
	ProcsPeak   int
	OutputBytes int64
	Enforced    Report
	Denials     []Denial
	Connections []Connection
	// Error is the setup error's text when Status is SetupError.
	Error string
}

type resultJSON struct {
	Status      Status       `json:"status"`
	ExitCode    int          `json:"exit_code"`
	Signal      string       `json:"signal,omitempty"`
	WallTimeMS  int64        `json:"wall_time_ms"`
	CPUTimeMS   int64        `json:"cpu_time_ms"`
	MemoryPeak  uint64       `json:"memory_peak_bytes"`
	ProcsPeak   int          `json:"procs_peak,omitempty"`
	OutputBytes int64        `json:"output_bytes"`
	Enforced    Report       `json:"enforced"`
	Denials     []Denial     `json:"denials,omitempty"`
	Connections []Connection `json:"connections,omitempty"`
	Error       string       `json:"error,omitempty"`
}

// MarshalJSON writes the result in airlock's documented JSON form.
func (r *Result) MarshalJSON() ([]byte, error) {
	enf := r.Enforced
	if enf == nil {
		enf = Report{}
	}
	return json.Marshal(resultJSON{
		Status: r.Status, ExitCode: r.ExitCode, Signal: r.Signal,
		WallTimeMS: r.WallTime.Milliseconds(), CPUTimeMS: r.CPUTime.Milliseconds(),
		MemoryPeak: r.MemoryPeak, ProcsPeak: r.ProcsPeak, OutputBytes: r.OutputBytes,
		Enforced: enf, Denials: r.Denials, Connections: r.Connections, Error: r.Error,
	})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{Status: j.Status, ExitCode: j.ExitCode, Signal: j.Signal,
		WallTime:   time.Duration(j.WallTimeMS) * time.Millisecond,
		CPUTime:    time.Duration(j.CPUTimeMS) * time.Millisecond,
		MemoryPeak: j.MemoryPeak, ProcsPeak: j.ProcsPeak, OutputBytes: j.OutputBytes,
		Enforced: j.Enforced, Denials: j.Denials, Connections: j.Connections, Error: j.Error}
	return nil
}

// Isolate writes the result as an isolate-style meta file (key:value lines)
// for judges migrating from isolate.
func (r *Result) Isolate() string {
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\n", k, v) }
	kv("time", fmt.Sprintf("%.3f", r.CPUTime.Seconds()))
	kv("time-wall", fmt.Sprintf("%.3f", r.WallTime.Seconds()))
	kv("max-rss", r.MemoryPeak/1024)
	kv("cg-mem", r.MemoryPeak/1024)
	switch r.Status {
	case OK:
	case NonZeroExit:
		kv("exitcode", r.ExitCode)
		kv("status", "RE")
	case Signaled:
		kv("exitsig", signalNumber(r.Signal))
		kv("status", "SG")
	case TimeLimit, WallTimeLimit:
		kv("killed", 1)
		kv("status", "TO")
		if r.Status == TimeLimit {
			kv("message", "Time limit exceeded")
		} else {
			kv("message", "Time limit exceeded (wall clock)")
		}
	case MemoryLimit:
		kv("cg-oom-killed", 1)
		kv("killed", 1)
		kv("status", "SG")
		kv("message", "Memory limit exceeded")
	case StatusSetupError:
		kv("status", "XX")
		kv("message", r.Error)
	default:
		kv("killed", 1)
		kv("status", "SG")
		kv("message", string(r.Status))
	}
	if r.Status != StatusSetupError && r.Status != OK && r.Status != NonZeroExit {
		if r.ExitCode != 0 && r.Signal == "" {
			kv("exitcode", r.ExitCode)
		}
	}
	return b.String()
}

// signalNumber maps the names Result.Signal uses back to Linux numbers.
func signalNumber(name string) int {
	for i, n := range signalNames {
		if n == name {
			return i
		}
	}
	return 0
}

// signalNames are Linux's signal names by number (the same on amd64 and arm64).
var signalNames = [...]string{"", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP",
	"SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE",
	"SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",
	"SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF",
	"SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"}

// SignalName names signal n as Result.Signal does.
func SignalName(n int) string {
	if n > 0 && n < len(signalNames) {
		return signalNames[n]
	}
	return fmt.Sprintf("SIG%d", n)
}

// cpuKillSlack: the kernel checks RLIMIT_CPU against tick-sampled CPU
// time, while wait4 reports the scheduler's exact time, so the SIGKILL at
// the limit comes with a reported time short of it (Linux, measured on the
// development VM: 0.90-1.03 s at 1 s, idle or loaded). A SIGKILL with at
// least limit-slack of CPU is judged the limit's.
func cpuKillSlack(limit time.Duration) time.Duration {
	return max(20*time.Millisecond, limit*15/100)
}
