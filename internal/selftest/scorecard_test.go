package selftest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScorecard(t *testing.T) {
	sc := &Scorecard{Sandboxed: true, Results: []Result{
		{ID: "H2", Category: "h", Verdict: Blocked, Source: "probe"},
		{ID: "A1", Category: "a", Verdict: Escaped, Source: "oracle", Evidence: "new host mount"},
		{ID: "B4", Category: "b", Verdict: Error, Reason: "no report"},
		{ID: "A4", Category: "a", Verdict: Escaped, Source: "probe"},
		{ID: "H1", Category: "h", Verdict: NotApplicable, Reason: "needs root"},
	}}
	if got := sc.Escaped(); got != 2 {
		t.Errorf("Escaped() = %d, want 2", got)
	}
	if got := sc.Errors(); got != 1 {
		t.Errorf("Errors() = %d, want 1", got)
	}
	var b strings.Builder
	sc.Print(&b)
	out := b.String()
	// Grouped by category, in THREATS.md order, empty categories left out.
	ia, ib, ih := strings.Index(out, "A. writes"), strings.Index(out, "B. reads"), strings.Index(out, "H. privilege")
	if ia < 0 || ib < ia || ih < ib || strings.Contains(out, "C. other") {
		t.Errorf("categories missing or out of order:\n%s", out)
	}
	if !strings.Contains(out, "5 probes: 1 blocked, 2 escaped, 1 errors, 1 not applicable") {
		t.Errorf("summary line wrong:\n%s", out)
	}
	j, err := sc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Scorecard
	if err := json.Unmarshal(j, &back); err != nil || back.Escaped() != 2 || back.Results[2].Reason != "no report" {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}
