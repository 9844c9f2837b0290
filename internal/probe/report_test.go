package probe

import "testing"

func TestParseReport(t *testing.T) {
	cases := []struct {
		name    string
		out     string
		id      string
		escaped bool
		wantErr bool
	}{
		{"plain", ReportPrefix + `{"id":"A1","attempted":[],"escaped":true}` + "\n", "A1", true, false},
		{"after flood", "xxxx\nxxxx" + "\n" + ReportPrefix + `{"id":"G6","attempted":["w: ok"],"escaped":false}` + "\n", "G6", false, false},
		{"last wins", ReportPrefix + `{"id":"G4","escaped":true}` + "\n" + ReportPrefix + `{"id":"G4","escaped":false}`, "G4", false, false},
		{"none", "fatal error: out of memory\n", "", false, true},
		{"broken json", ReportPrefix + "{\"id\":", "", false, true},
	}
	for _, c := range cases {
		r, err := ParseReport([]byte(c.out))
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, want error %v", c.name, err, c.wantErr)
			continue
		}
		if err == nil && (r.ID != c.id || r.Escaped != c.escaped) {
			t.Errorf("%s: got id %q escaped %v, want %q %v", c.name, r.ID, r.Escaped, c.id, c.escaped)
		}
	}
}

func TestIDOrder(t *testing.T) {
	cases := []struct {
		a, b string
		less bool
	}{{"A2", "A10", true}, {"A10", "A2", false}, {"A12", "B1", true}, {"H9", "H10", true}, {"G7", "G7", false}}
	for _, c := range cases {
		if got := idLess(c.a, c.b); got != c.less {
			t.Errorf("idLess(%s, %s) = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}
