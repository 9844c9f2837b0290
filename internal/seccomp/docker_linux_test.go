package seccomp

import (
	"runtime"
	"sort"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Docker's default capability set: a container without CAP_SYS_ADMIN.
var dockerDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Syscalls Docker's default profile denies that airlock's default allows,
// each with the reason. The test fails if this list and reality differ
// in either direction, so every new difference must be argued here.
var dockerExceptions = map[string]string{
	// Newer than Docker's profile (Linux 6.17). The same operation as
	// ioctl(FS_IOC_FSGETXATTR/FSSETXATTR), which Docker allows; the kernel's
	// ownership and CAP_LINUX_IMMUTABLE checks still apply.
	"file_getattr": "fsxattr read, same as an allowed ioctl",
	"file_setattr": "fsxattr write, same as an allowed ioctl",
	// Newer than Docker's profile: a yield hint for rseq time-slice
	// extension; rseq itself is allowed by both; no privilege involved.
	"rseq_slice_yield": "scheduling hint for rseq, which is allowed",
}

// dockerAllowed returns, per syscall name, whether Docker's effective
// default profile has any allow rule for it (with or without arguments).
func dockerAllowed(t *testing.T) map[string]bool {
	t.Helper()
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: dockerDefaultCaps}}}
	p, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno {
		t.Fatalf("Docker default action is %s, expected SCMP_ACT_ERRNO", p.DefaultAction)
	}
	allowed := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Action != specs.ActAllow {
			continue
		}
		for _, n := range s.Names {
			allowed[n] = true
		}
	}
	return allowed
}

func TestDefaultVersusDocker(t *testing.T) {
	arch := runtime.GOARCH
	a, err := getArch(arch)
	if err != nil {
		t.Skipf("no table for %s", arch)
	}
	docker := dockerAllowed(t)
	f, _ := Preset("default")
	var extra []string
	for _, nr := range a.nrs {
		name := a.byNr[nr]
		if docker[name] || !weMayAllow(f, name) {
			continue
		}
		extra = append(extra, name)
	}
	sort.Strings(extra)
	var unexplained, stale []string
	for _, n := range extra {
		if _, ok := dockerExceptions[n]; !ok {
			unexplained = append(unexplained, n)
		}
	}
	for n := range dockerExceptions {
		if !contains(extra, n) {
			stale = append(stale, n)
		}
	}
	sort.Strings(stale)
	if len(unexplained) > 0 {
		t.Errorf("default allows syscalls Docker denies, without a documented reason: %s", strings.Join(unexplained, " "))
	}
	if len(stale) > 0 {
		t.Errorf("documented exceptions that are no longer exceptions: %s", strings.Join(stale, " "))
	}
	// Informational: what we deny that Docker allows.
	var stricter []string
	for _, nr := range a.nrs {
		name := a.byNr[nr]
		if docker[name] && !weMayAllow(f, name) {
			stricter = append(stricter, name)
		}
	}
	t.Logf("denied by airlock, allowed by Docker (%d): %s", len(stricter), strings.Join(stricter, " "))
}

// weMayAllow reports whether any rule (or the default) can allow name.
func weMayAllow(f *Filter, name string) bool {
	rs := f.Rules[name]
	for _, r := range rs {
		if r.Action.Allows() {
			return true
		}
		if len(r.Args) == 0 {
			return false
		}
	}
	return f.Default.Allows()
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
