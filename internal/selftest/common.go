package selftest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
)

// Helpers shared by the Linux and Windows orchestrators.

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// limitStatus reports whether the sandbox stopped the probe for a limit.
func limitStatus(s airlock.Status) bool {
	switch s {
	case airlock.TimeLimit, airlock.MemoryLimit, airlock.OutputLimit, airlock.FileSizeLimit, airlock.ProcessLimit:
		return true
	}
	return false
}

// summarize lists the distinct outcomes of the probe's steps.
func summarize(r *probe.Report) string {
	seen := map[string]int{}
	for _, a := range r.Attempted {
		if i := strings.LastIndex(a, ": "); i >= 0 {
			seen[a[i+2:]]++
		}
	}
	var parts []string
	for k, n := range seen {
		parts = append(parts, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(parts)
	s := fmt.Sprintf("%d steps: %s", len(r.Attempted), strings.Join(parts, ", "))
	if r.Detail != "" {
		s += "; " + r.Detail
	}
	return s
}

// tailBuffer keeps the last max bytes written and counts all of them.
type tailBuffer struct {
	buf   []byte
	max   int
	total int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.total += int64(len(p))
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.buf }
