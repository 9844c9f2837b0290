package windows

import "testing"

func TestLookPath(t *testing.T) {
	files := map[string]bool{
		`C:\bin\tool.exe`:   true,
		`C:\bin\run.com`:    true,
		`C:\other\tool.exe`: true,
		`C:\w\sub\x.exe`:    true,
		`C:\w\data.txt`:     true,
	}
	isFile := func(p string) bool { return files[p] }
	env := []string{`Path=C:\nothere;"C:\bin\";C:\other`}
	for _, tc := range []struct {
		name, want string
		err        bool
	}{
		{"tool", `C:\bin\tool.exe`, false},
		{"tool.exe", `C:\bin\tool.exe`, false},
		{"run", `C:\bin\run.com`, false},
		{`sub\x`, `C:\w\sub\x.exe`, false},
		{`C:\other\tool`, `C:\other\tool.exe`, false},
		{"missing", "", true},
		{"data.txt", "", true},
		{"", "", true},
	} {
		got, err := LookPath(tc.name, env, `C:\w`, isFile)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("LookPath(%q) = %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	// The broker's PATH is never used: no PATH in env, no lookup.
	if _, err := LookPath("tool", nil, `C:\w`, isFile); err == nil {
		t.Error("found a program without a PATH in the sandbox environment")
	}
}
