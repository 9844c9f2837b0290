package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
)

// Report is what a probe prints, as one JSON line, as its last line on
// standard output.
type Report struct {
	ID string `json:"id"`
	// Attempted lists each step and its outcome ("step: ok" or "step: EPERM").
	Attempted []string `json:"attempted"`
	// Escaped is the probe's own view: some hostile step had its effect.
	Escaped bool `json:"escaped"`
	// Errno is the last error a step got ("" when the last step worked).
	Errno string `json:"errno,omitempty"`
	// Detail says what escaped, or why nothing could be tried.
	Detail string `json:"detail,omitempty"`
}

// ReportPrefix starts the report line, so it can be told apart from other
// output (the output-flood probe writes to stdout too).
const ReportPrefix = "AIRLOCK-PROBE "

// ParseReport finds the last report line in out.
func ParseReport(out []byte) (*Report, error) {
	s := string(out)
	i := strings.LastIndex(s, ReportPrefix)
	if i < 0 {
		return nil, errors.New("probe printed no report")
	}
	line := s[i+len(ReportPrefix):]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	var r Report
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return nil, fmt.Errorf("probe report: %w", err)
	}
	return &r, nil
}

// Info describes one probe for the orchestrator.
type Info struct {
	ID       string // THREATS.md class, e.g. "A1"
	Category string // THREATS.md category letter, e.g. "a"
	Title    string
}

// Categories names the THREATS.md categories in scorecard order.
var Categories = []struct{ Letter, Name string }{
	{"a", "writes outside the box"},
	{"b", "reads of private data"},
	{"c", "other processes"},
	{"d", "IPC"},
	{"e", "devices"},
	{"f", "network"},
	{"g", "resource exhaustion"},
	{"h", "privilege escalation"},
}

// run is one probe's state: its arguments and the report being built.
type run struct {
	r    Report
	args map[string]string
}

func (p *run) arg(k string) string { return p.args[k] }

// step records the outcome of one hostile step and reports whether it worked.
func (p *run) step(name string, err error) bool {
	if err == nil {
		p.r.Attempted = append(p.r.Attempted, name+": ok")
		p.r.Errno = ""
		return true
	}
	e := errnoName(err)
	p.r.Attempted = append(p.r.Attempted, name+": "+e)
	p.r.Errno = e
	return false
}

// escape marks the probe as escaped and says how.
func (p *run) escape(format string, a ...any) {
	p.r.Escaped = true
	p.note(format, a...)
}

func (p *run) note(format string, a ...any) {
	if p.r.Detail != "" {
		p.r.Detail += "; "
	}
	p.r.Detail += fmt.Sprintf(format, a...)
}

func errnoName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		if n := errnoLabel(en); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(en))
	}
	return err.Error()
}

func emit(r *Report) {
	b, _ := json.Marshal(r)
	os.Stdout.Write([]byte("\n" + ReportPrefix + string(b) + "\n"))
}

// Main runs `__probe ID [key=value...]` and returns the process exit code:
// 0 when a report was printed, 2 for a usage error.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: __probe ID [key=value...]; IDs:", strings.Join(IDs(), " "))
		return 2
	}
	id := args[0]
	kv := map[string]string{}
	var rest []string
	for _, a := range args[1:] {
		if k, v, ok := strings.Cut(a, "="); ok && !strings.HasPrefix(a, "-") {
			kv[k] = v
		} else {
			rest = append(rest, a)
		}
	}
	if h, ok := helpers[id]; ok {
		return h(rest, kv)
	}
	f, ok := probes[id]
	if !ok {
		fmt.Fprintf(os.Stderr, "airlock: unknown probe %q\n", id)
		return 2
	}
	p := &run{r: Report{ID: id, Attempted: []string{}}, args: kv}
	f.fn(p)
	emit(&p.r)
	return 0
}

type probeFunc struct {
	info Info
	fn   func(*run)
}

// probes and helpers are filled by the OS-specific files.
var (
	probes  = map[string]probeFunc{}
	helpers = map[string]func(rest []string, kv map[string]string) int{}
)

func register(id, cat, title string, fn func(*run)) {
	probes[id] = probeFunc{Info{id, cat, title}, fn}
}

// IDs lists the probes built for this OS, in catalogue order.
func IDs() []string {
	var ids []string
	for id := range probes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return idLess(ids[i], ids[j]) })
	return ids
}

// Lookup returns the probe's description.
func Lookup(id string) (Info, bool) {
	f, ok := probes[id]
	return f.info, ok
}

func idLess(a, b string) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	var x, y int
	fmt.Sscanf(a[1:], "%d", &x)
	fmt.Sscanf(b[1:], "%d", &y)
	return x < y
}
