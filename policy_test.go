package airlock

import "testing"

func TestValidate(t *testing.T) {
	ok := DefaultPolicy()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
	bad := []struct {
		name string
		edit func(*Policy)
	}{
		{"relative dest", func(p *Policy) { p.Mounts = append(p.Mounts, ReadOnly("/usr", "usr")) }},
		{"unclean dest", func(p *Policy) { p.Mounts = append(p.Mounts, ReadOnly("/usr", "/a/../etc")) }},
		{"bind over /", func(p *Policy) { p.Mounts = append(p.Mounts, ReadOnly("/usr", "/")) }},
		{"relative workdir", func(p *Policy) { p.Workdir = "src" }},
		{"env without =", func(p *Policy) { p.Env = append(p.Env, "NOVALUE") }},
		{"net allow empty", func(p *Policy) { p.Network.Mode = NetAllow }},
		{"net mode", func(p *Policy) { p.Network.Mode = "sometimes" }},
		{"tiny memory", func(p *Policy) { p.Limits.Memory = 100 }},
		{"negative cpus", func(p *Policy) { p.Limits.CPUs = -1 }},
		{"preset", func(p *Policy) { p.Syscalls.Preset = "lax" }},
		{"require", func(p *Policy) { p.Require = []string{"apparmor"} }},
	}
	for _, b := range bad {
		p := DefaultPolicy()
		b.edit(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}
