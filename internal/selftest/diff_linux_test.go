package selftest

import (
	"strings"
	"testing"
)

func base() *snapshot {
	return &snapshot{
		tree:    map[string]string{"/f/secret": "mode 100644 size 3 nlink 1", "/f/ro": "mode 40755"},
		secret:  []byte("abc"),
		signals: "",
		victim:  "nice 0",
		accepts: map[string]int64{"abs": 0, "tcp4": 2},
		knobs:   map[string]string{"/proc/sys/kernel/core_pattern": "core\n"},
	}
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name   string
		change func(*snapshot)
		want   string // "" means no effect
	}{
		{"nothing", func(*snapshot) {}, ""},
		{"new file", func(s *snapshot) { s.tree["/f/ro/x"] = "mode 100644" }, "new file /f/ro/x"},
		{"link count", func(s *snapshot) { s.tree["/f/secret"] = "mode 100644 size 3 nlink 2" }, "/f/secret changed"},
		{"removed", func(s *snapshot) { delete(s.tree, "/f/ro") }, "file removed /f/ro"},
		{"secret", func(s *snapshot) { s.secret = []byte("abd") }, "canary secret content changed"},
		{"signal", func(s *snapshot) { s.signals = "SIGUSR1\n" }, "VICTIM received SIGUSR1"},
		{"nice", func(s *snapshot) { s.victim = "nice 7" }, "VICTIM scheduling or limits changed"},
		{"accept", func(s *snapshot) { s.accepts["tcp4"] = 3 }, "tcp4 server saw 1 connection(s)"},
		{"mount", func(s *snapshot) { s.mounts = []string{"/f/ro/mnt"} }, "new host mount"},
		{"knob", func(s *snapshot) { s.knobs["/proc/sys/kernel/core_pattern"] = "|/x\n" }, "core_pattern changed"},
		{"binary", func(s *snapshot) { s.binSum[0] = 1 }, "sha256 changed"},
		{"pty", func(s *snapshot) { s.injected = []byte("X") }, `pty input queue got "X"`},
		{"daemon", func(s *snapshot) { s.procs = []int{42} }, "1 process(es) outlived"},
	}
	for _, c := range cases {
		b := base()
		c.change(b)
		got := strings.Join(diff(base(), b), "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: diff = %q, want %q", c.name, got, c.want)
		}
	}
}
