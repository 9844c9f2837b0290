package landlock

import (
	"testing"

	"golang.org/x/sys/unix"
)

var benchRequest = Request{
	ReadOnly:          []string{"/usr", "/bin", "/lib", "/lib64", "/etc", "/nonexistent-airlock-landlock"},
	ReadWrite:         []string{"/tmp", "/dev/null"},
	RestrictNet:       true,
	ConnectTCP:        []uint16{443},
	ScopeSignals:      true,
	ScopeAbstractUnix: true,
}

// BenchmarkPlanPrepare is the parent's cost per launch.
func BenchmarkPlanPrepare(b *testing.B) {
	for b.Loop() {
		rs, _, err := Plan(benchRequest, 7)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rs.Prepare(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunOps is the child's cost: every op of a real ruleset with
// restrict_self replaced by getpid, so the benchmark process stays free.
func BenchmarkRunOps(b *testing.B) {
	abi, err := ABI()
	if err != nil || abi < 7 {
		b.Skipf("host Landlock ABI %d < 7 (%v)", abi, err)
	}
	rs, _, err := Plan(benchRequest, abi)
	if err != nil {
		b.Fatal(err)
	}
	p, err := rs.Prepare()
	if err != nil {
		b.Fatal(err)
	}
	ops := append([]Op(nil), p.Ops()...)
	for i := range ops {
		if ops[i].Nr == unix.SYS_LANDLOCK_RESTRICT_SELF {
			ops[i].Nr, ops[i].Args = unix.SYS_GETPID, [6]uintptr{}
		}
	}
	b.ReportMetric(float64(len(ops)), "ops")
	for b.Loop() {
		if i, e := Run(ops); i >= 0 {
			b.Fatalf("%s: %v", ops[i].Stage, e)
		}
	}
}
