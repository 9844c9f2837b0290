package darwin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// LogPath is the unified log tool.
const LogPath = "/usr/bin/log"

// LogShowArgs returns the arguments for `log show` that list this run's
// Seatbelt denials since start: every denial carries "airlock:<tag>".
func LogShowArgs(tag string, start time.Time) []string {
	return []string{"show", "--style", "ndjson",
		"--start", start.Add(-time.Second).Format("2006-01-02 15:04:05"),
		"--predicate", fmt.Sprintf("eventMessage CONTAINS %q", "airlock:"+tag)}
}

// Denial is one kind of refused operation with how often it happened.
type Denial struct {
	Op    string // Seatbelt operation, e.g. "file-read-data"
	Path  string // first target seen (path, address or service)
	Count int
}

var denyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`deny\(\d+\) ([a-z0-9*-]+)(?: (.*))?$`) })

// ParseLog reads `log show --style ndjson` output and groups the denials by
// operation, in first-seen order.
func ParseLog(r io.Reader, tag string) []Denial {
	var out []Denial
	idx := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev struct {
			EventMessage string `json:"eventMessage"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		msg := strings.TrimSpace(ev.EventMessage)
		if !strings.Contains(msg, "airlock:"+tag) {
			continue
		}
		msg = strings.TrimSpace(strings.ReplaceAll(msg, "airlock:"+tag, ""))
		m := denyRE().FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		if i, ok := idx[m[1]]; ok {
			out[i].Count++
			continue
		}
		idx[m[1]] = len(out)
		out = append(out, Denial{Op: m[1], Path: strings.TrimSpace(m[2]), Count: 1})
	}
	return out
}
