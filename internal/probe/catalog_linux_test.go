package probe

import "testing"

// The selftest promises at least 45 THREATS.md classes, each probe in a
// known category.
func TestCatalogue(t *testing.T) {
	ids := IDs()
	if len(ids) < 45 {
		t.Fatalf("%d probes, want at least 45", len(ids))
	}
	cats := map[string]bool{}
	for _, c := range Categories {
		cats[c.Letter] = true
	}
	for _, id := range ids {
		info, _ := Lookup(id)
		if !cats[info.Category] || info.Title == "" {
			t.Errorf("probe %s: category %q title %q", id, info.Category, info.Title)
		}
	}
}
