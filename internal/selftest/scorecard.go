package selftest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
)

// Options say how to run the battery.
type Options struct {
	// Binary is the airlock binary (any binary whose `__probe` subcommand
	// runs probe.Main).
	Binary string
	// Sandboxed runs each probe under airlock's default policy; false runs
	// the probes bare, to show that each one detects an escape.
	Sandboxed bool
	// Only restricts the run to these probe IDs (e.g. "A1", "G2").
	Only []string
	// JSON is for the caller's output choice (Scorecard.JSON); Run ignores it.
	JSON bool
	// Log, when set, gets one progress line per probe.
	Log io.Writer
	// Adjust, when set, changes each probe's sandbox policy before the run
	// (to see what a weaker policy lets through; the tests use it to show
	// the probes notice a missing protection).
	Adjust func(p *airlock.Policy)
}

// Verdict is the outcome of one probe.
type Verdict string

const (
	Blocked       Verdict = "BLOCKED"
	Escaped       Verdict = "ESCAPED"
	Error         Verdict = "ERROR"
	NotApplicable Verdict = "NOT-APPLICABLE"
)

// Result is one probe's line of the scorecard.
type Result struct {
	ID       string  `json:"id"`
	Category string  `json:"category"`
	Title    string  `json:"title"`
	Verdict  Verdict `json:"verdict"`
	// Source says who decided: "oracle" (a host-side check saw an effect or
	// none), "probe" (the probe's own report), "limit" (the sandbox stopped
	// the probe at a resource limit), "seccomp" (killed by SIGSYS).
	Source   string        `json:"source"`
	Evidence string        `json:"evidence,omitempty"`
	Reason   string        `json:"reason,omitempty"` // for NOT-APPLICABLE and ERROR
	Report   *probe.Report `json:"report,omitempty"`
}

// Scorecard is the outcome of a run.
type Scorecard struct {
	Sandboxed bool     `json:"sandboxed"`
	UID       int      `json:"uid"`
	Results   []Result `json:"results"`
}

// Escaped counts the probes that escaped.
func (s *Scorecard) Escaped() int { return s.count(Escaped) }

// Errors counts the probes that could not be judged.
func (s *Scorecard) Errors() int { return s.count(Error) }

func (s *Scorecard) count(v Verdict) int {
	n := 0
	for _, r := range s.Results {
		if r.Verdict == v {
			n++
		}
	}
	return n
}

// JSON renders the scorecard for machines.
func (s *Scorecard) JSON() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// Print writes the scorecard for people, grouped by THREATS.md category.
func (s *Scorecard) Print(w io.Writer) {
	mode := "sandboxed (default policy)"
	if !s.Sandboxed {
		mode = "UNSANDBOXED (probe validation)"
	}
	fmt.Fprintf(w, "airlock selftest: %s, uid %d\n", mode, s.UID)
	for _, c := range probe.Categories {
		var rs []Result
		for _, r := range s.Results {
			if r.Category == c.Letter {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s. %s\n", strings.ToUpper(c.Letter), c.Name)
		for _, r := range rs {
			why := r.Evidence
			if r.Reason != "" {
				why = r.Reason
			}
			if len(why) > 160 {
				why = why[:157] + "..."
			}
			fmt.Fprintf(w, "  %-4s %-15s %-7s %-50s %s\n", r.ID, r.Verdict, r.Source, r.Title, why)
		}
	}
	fmt.Fprintf(w, "\n%d probes: %d blocked, %d escaped, %d errors, %d not applicable\n",
		len(s.Results), s.count(Blocked), s.count(Escaped), s.count(Error), s.count(NotApplicable))
}
