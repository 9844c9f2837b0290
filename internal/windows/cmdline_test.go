package windows

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// parseCommandLine is an independent decoder following the documented
// CommandLineToArgvW / MSVCRT rules, used to check the encoder.
func parseCommandLine(s string) []string {
	var args []string
	// Program name: quotes group, backslashes are literal.
	i := 0
	var prog strings.Builder
	inQ := false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQ = !inQ
			continue
		}
		if !inQ && (c == ' ' || c == '\t') {
			break
		}
		prog.WriteByte(c)
	}
	args = append(args, prog.String())
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return args
		}
		var a strings.Builder
		inQ = false
		for i < len(s) {
			c := s[i]
			if !inQ && (c == ' ' || c == '\t') {
				break
			}
			if c == '\\' {
				n := 0
				for i < len(s) && s[i] == '\\' {
					n++
					i++
				}
				if i < len(s) && s[i] == '"' {
					a.WriteString(strings.Repeat(`\`, n/2))
					if n%2 == 1 {
						a.WriteByte('"')
						i++
					}
					continue
				}
				a.WriteString(strings.Repeat(`\`, n))
				continue
			}
			if c == '"' {
				if inQ && i+1 < len(s) && s[i+1] == '"' {
					a.WriteByte('"') // "" inside quotes: a literal quote
					i += 2
					continue
				}
				inQ = !inQ
				i++
				continue
			}
			a.WriteByte(c)
			i++
		}
		args = append(args, a.String())
	}
}

func TestQuoteArg(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a", "a"},
		{"", `""`},
		{"a b", `"a b"`},
		{"tab\tx", "\"tab\tx\""},
		{`a"b`, `"a\"b"`},
		{`a\b`, `a\b`},
		{`\\server\share\x`, `\\server\share\x`},
		{`a\"b`, `"a\\\"b"`},
		{`dir\`, `dir\`},
		{`a b\`, `"a b\\"`},
		{`a b\\`, `"a b\\\\"`},
		{`a\\"`, `"a\\\\\""`},
		{`"`, `"\""`},
		{`""`, `"\"\""`},
		{`C:\Program Files\x\`, `"C:\Program Files\x\\"`},
	} {
		if got := QuoteArg(tc.in); got != tc.want {
			t.Errorf("QuoteArg(%q) = %q, want %q", tc.in, got, tc.want)
		}
		line := "p " + QuoteArg(tc.in)
		if got := parseCommandLine(line); len(got) != 2 || got[1] != tc.in {
			t.Errorf("decode(%q) = %q, want [p %q]", line, got, tc.in)
		}
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  bool
	}{
		{[]string{"prog"}, "prog", false},
		{[]string{`C:\Program Files\p.exe`, "a b", ""}, `"C:\Program Files\p.exe" "a b" ""`, false},
		{[]string{`C:\dir\p.exe`, `x\`}, `C:\dir\p.exe x\`, false},
		{[]string{""}, `""`, false},
		{[]string{`bad"name`}, "", true},
		{[]string{"p", "nul\x00"}, "", true},
		{nil, "", true},
	} {
		got, err := CommandLine(tc.args)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("CommandLine(%q) = %q, %v; want %q, error %v", tc.args, got, err, tc.want, tc.err)
		}
		if err == nil && !reflect.DeepEqual(parseCommandLine(got), tc.args) {
			t.Errorf("decode(%q) = %q, want %q", got, parseCommandLine(got), tc.args)
		}
	}
}

func TestCommandLineRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alpha := []byte{'a', ' ', '\t', '\\', '"', 'x', '\\', '"'}
	for n := 0; n < 5000; n++ {
		args := []string{`C:\p.exe`}
		for k := r.Intn(4); k >= 0; k-- {
			b := make([]byte, r.Intn(8))
			for i := range b {
				b[i] = alpha[r.Intn(len(alpha))]
			}
			args = append(args, string(b))
		}
		line, err := CommandLine(args)
		if err != nil {
			t.Fatal(err)
		}
		if got := parseCommandLine(line); !reflect.DeepEqual(got, args) {
			t.Fatalf("round trip of %q via %q gave %q", args, line, got)
		}
	}
}

func FuzzQuoteArg(f *testing.F) {
	for _, s := range []string{"", `a\"b`, `x\\`, "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return
		}
		if got := parseCommandLine("p " + QuoteArg(s)); len(got) != 2 || got[1] != s {
			t.Fatalf("QuoteArg(%q) = %q decodes to %q", s, QuoteArg(s), got)
		}
	})
}
