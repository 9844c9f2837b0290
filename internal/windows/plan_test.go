package windows

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func find(r []Protection, name string) (Protection, bool) {
	for _, p := range r {
		if p.Name == name {
			return p, true
		}
	}
	return Protection{}, false
}

func TestBuildPlanJob(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lim   Limits
		cpus  int
		flags uint32
		check func(t *testing.T, p *Plan)
	}{
		{"defaults", Limits{}, 4, LimitKillOnJobClose | LimitDieOnException, func(t *testing.T, p *Plan) {
			if p.Job.UIRestrictions != UILimitAll || p.NoChildren || p.Job.CPURate != 0 {
				t.Errorf("job %+v, nochildren %v", p.Job, p.NoChildren)
			}
		}},
		{"procs 1", Limits{Procs: 1}, 4, LimitKillOnJobClose | LimitDieOnException | LimitActiveProcess, func(t *testing.T, p *Plan) {
			if p.Job.ActiveProcs != 1 || !p.NoChildren {
				t.Errorf("procs 1: active %d, nochildren %v", p.Job.ActiveProcs, p.NoChildren)
			}
		}},
		{"procs 8", Limits{Procs: 8}, 4, LimitKillOnJobClose | LimitDieOnException | LimitActiveProcess, func(t *testing.T, p *Plan) {
			if p.Job.ActiveProcs != 8 || p.NoChildren {
				t.Errorf("procs 8: active %d, nochildren %v", p.Job.ActiveProcs, p.NoChildren)
			}
		}},
		{"memory", Limits{Memory: 64 << 20}, 4, LimitKillOnJobClose | LimitDieOnException | LimitJobMemory, func(t *testing.T, p *Plan) {
			if p.Job.JobMemory != 64<<20 {
				t.Errorf("memory %d", p.Job.JobMemory)
			}
		}},
		{"cpu time", Limits{CPUTime: 2 * time.Second}, 4, LimitKillOnJobClose | LimitDieOnException | LimitJobTime, func(t *testing.T, p *Plan) {
			if p.Job.JobUserTime100 != 20_000_000 {
				t.Errorf("job time %d, want 20000000 (100 ns units)", p.Job.JobUserTime100)
			}
		}},
		{"one of four cpus", Limits{CPUs: 1}, 4, LimitKillOnJobClose | LimitDieOnException, func(t *testing.T, p *Plan) {
			if p.Job.CPURate != 2500 {
				t.Errorf("rate %d, want 2500", p.Job.CPURate)
			}
		}},
		{"more cpus than host", Limits{CPUs: 16}, 2, LimitKillOnJobClose | LimitDieOnException, func(t *testing.T, p *Plan) {
			if p.Job.CPURate != 10000 {
				t.Errorf("rate %d, want 10000", p.Job.CPURate)
			}
		}},
		{"tiny cpu share", Limits{CPUs: 0.00001}, 2, LimitKillOnJobClose | LimitDieOnException, func(t *testing.T, p *Plan) {
			if p.Job.CPURate != 1 {
				t.Errorf("rate %d, want 1", p.Job.CPURate)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := BuildPlan(Spec{Limits: tc.lim, HostCPUs: tc.cpus, Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			if p.Job.LimitFlags != tc.flags {
				t.Errorf("flags %#x, want %#x", p.Job.LimitFlags, tc.flags)
			}
			tc.check(t, p)
		})
	}
}

func TestBuildPlanGrants(t *testing.T) {
	s := Spec{
		Program:    `C:\tools\app.exe`,
		SystemDirs: []string{`C:\Windows`, `C:\Program Files`},
		Binds: []Bind{
			{Source: `C:\work`, Dest: `C:\work`},
			{Source: `c:\WORK\`, Dest: `C:\work`, Write: true},
			{Source: `C:\data`, Dest: `C:\data`, Optional: true},
		},
		Strict: true,
	}
	p, err := BuildPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []PathGrant{{`C:\work`, Modify, false}, {`C:\data`, Read, true}, {`C:\tools\app.exe`, Read, false}}
	if len(p.Grants) != len(want) {
		t.Fatalf("grants %+v, want %+v", p.Grants, want)
	}
	for i := range want {
		if p.Grants[i] != want[i] {
			t.Errorf("grant %d = %+v, want %+v", i, p.Grants[i], want[i])
		}
	}
	// A program in a system directory or inside a grant needs no grant.
	for _, prog := range []string{`C:\Windows\System32\cmd.exe`, `C:\work\bin\x.exe`} {
		s.Program = prog
		p, _ := BuildPlan(s)
		if len(p.Grants) != 2 {
			t.Errorf("program %s: grants %+v, want only the two binds", prog, p.Grants)
		}
	}
}

func TestBuildPlanRejects(t *testing.T) {
	_, err := BuildPlan(Spec{Binds: []Bind{{Source: `C:\a`, Dest: `C:\b`}}})
	if err == nil || !strings.Contains(err.Error(), "destination must equal source") {
		t.Errorf("moved bind: err %v", err)
	}
	if _, err := BuildPlan(Spec{Dir: `C:\Users\me`, SystemDirs: []string{`C:\Windows`}}); err == nil || !strings.Contains(err.Error(), "working directory") {
		t.Errorf("ungranted workdir: err %v", err)
	}
	for _, s := range []Spec{
		{Dir: `C:\Windows\Temp`, SystemDirs: []string{`C:\Windows`}},
		{Dir: `C:\w\sub`, Binds: []Bind{{Source: `C:\w`, Dest: `C:\w`}}},
	} {
		if _, err := BuildPlan(s); err != nil {
			t.Errorf("workdir %s: %v", s.Dir, err)
		}
	}
	if _, err := BuildPlan(Spec{Net: "loopback"}); err == nil {
		t.Error("unknown network mode accepted")
	}
	for _, s := range []Spec{
		{Net: "allow", Strict: true},
		{Limits: Limits{FileSize: 1 << 20}, Strict: true},
		{Limits: Limits{OpenFiles: 10}, Strict: true},
		{Limits: Limits{Stack: 1 << 20}, Strict: true},
	} {
		if _, err := BuildPlan(s); !errors.Is(err, ErrNotEnforceable) {
			t.Errorf("strict %+v: err %v, want ErrNotEnforceable", s, err)
		}
		s.Strict = false
		p, err := BuildPlan(s)
		if err != nil {
			t.Errorf("best-effort %+v: %v", s, err)
			continue
		}
		degraded := false
		for _, x := range p.Report {
			degraded = degraded || x.State != StateEnforced && x.Name != "syscalls"
		}
		if !degraded {
			t.Errorf("best-effort %+v: report claims everything enforced: %+v", s, p.Report)
		}
	}
}

func TestBuildPlanNetwork(t *testing.T) {
	for _, tc := range []struct {
		net   string
		caps  int
		state string
	}{{"none", 0, StateEnforced}, {"", 0, StateEnforced}, {"host", 2, StateOff}, {"allow", 0, StateDegraded}} {
		p, err := BuildPlan(Spec{Net: tc.net})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := find(p.Report, "network")
		if len(p.Capabilities) != tc.caps || n.State != tc.state {
			t.Errorf("net %q: caps %v, state %s; want %d caps, %s", tc.net, p.Capabilities, n.State, tc.caps, tc.state)
		}
	}
}

func TestMitigations(t *testing.T) {
	p, _ := BuildPlan(Spec{})
	if p.Mitigations&MitigationStrictHandles == 0 {
		t.Error("strict handle checks missing")
	}
	if p.Mitigations&(MitigationNoDynamicCode|MitigationWin32kDisable) != 0 {
		t.Error("JIT- and GUI-breaking mitigations must be opt-in")
	}
	p, _ = BuildPlan(Spec{NoDynamicCode: true, NoWin32k: true})
	if p.Mitigations&MitigationNoDynamicCode == 0 || p.Mitigations&MitigationWin32kDisable == 0 {
		t.Error("opt-in mitigations not set")
	}
}

func TestFallback(t *testing.T) {
	strict, _ := BuildPlan(Spec{Strict: true})
	if err := strict.Fallback("userenv lacks CreateAppContainerProfile"); !errors.Is(err, ErrNotEnforceable) {
		t.Errorf("strict fallback: %v", err)
	}
	be, _ := BuildPlan(Spec{})
	if err := be.Fallback("x"); err != nil {
		t.Errorf("best-effort fallback refused: %v", err)
	}
	fs, _ := find(be.FallbackReport, "filesystem")
	net, _ := find(be.FallbackReport, "network")
	kill, _ := find(be.FallbackReport, "kill-tree")
	if fs.State != StateDegraded || net.State != StateOff || kill.State != StateEnforced {
		t.Errorf("fallback report fs=%s net=%s kill=%s", fs.State, net.State, kill.State)
	}
	// The AppContainer report itself is untouched.
	if f, _ := find(be.Report, "filesystem"); f.State != StateEnforced {
		t.Errorf("report changed: %+v", f)
	}
	rep := append([]Protection(nil), be.Report...)
	if err := be.Degrade(&rep, "cpu", "rate control refused"); err != nil {
		t.Errorf("best-effort degrade: %v", err)
	}
	if c, _ := find(rep, "cpu"); c.State != StateDegraded {
		t.Errorf("degrade did not record: %+v", rep)
	}
	if err := strict.Degrade(&rep, "cpu", "x"); !errors.Is(err, ErrNotEnforceable) {
		t.Errorf("strict degrade: %v", err)
	}
}
