package airlock

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
	"github.com/airlock-sandbox/airlock/internal/landlock"
	"github.com/airlock-sandbox/airlock/internal/netns"
)

// landlockABI and cgroupDetect are variables so tests can simulate hosts
// without these mechanisms.
var (
	landlockABI  = landlock.ABI
	cgroupDetect = cgroup.Detect
	netnsCheck   = netns.Check
)

// helperRegistered is set by RunHelper: the program can be re-executed in
// the helper roles (the network set-up among them).
var helperRegistered bool

func readSysctl(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// tryNamespaces starts /bin/true in new namespaces: the only reliable test,
// since AppArmor, containers and sysctls each block them differently.
func tryNamespaces(flags uintptr) error {
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags | syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}}
	return cmd.Run()
}

func probe() Features {
	f := Features{OS: "linux"}
	add := func(it Feature) { f.Items = append(f.Items, it) }

	userns := Feature{Name: "user namespaces", Required: true,
		Lost: "every namespace: airlock cannot build a sandbox without root-free user namespaces"}
	if err := tryNamespaces(0); err != nil {
		userns.Detail = err.Error()
		switch {
		case readSysctl("/proc/sys/user/max_user_namespaces") == "0":
			userns.Detail = "user.max_user_namespaces = 0"
			userns.Fix = "sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d)"
		case readSysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
			userns.Detail = "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+)"
			userns.Fix = "install an AppArmor profile for airlock: printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile airlock /usr/local/bin/airlock flags=(unconfined) {\\n  userns,\\n}\\n' > /etc/apparmor.d/airlock && apparmor_parser -r /etc/apparmor.d/airlock"
		case readSysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0":
			userns.Detail = "kernel.unprivileged_userns_clone = 0"
			userns.Fix = "sysctl -w kernel.unprivileged_userns_clone=1"
		default:
			if _, err := os.Stat("/.dockerenv"); err == nil {
				userns.Detail += " (running inside a container)"
				userns.Fix = "run the container with a seccomp profile and AppArmor policy that allow unshare(CLONE_NEWUSER), or run airlock on the host"
			}
		}
	} else {
		userns.Available = true
		userns.Detail = "max " + readSysctl("/proc/sys/user/max_user_namespaces")
	}
	add(userns)
	for _, ns := range []struct {
		name string
		flag uintptr
		lost string
	}{
		{"mount namespace", unix.CLONE_NEWNS, "the private filesystem view"},
		{"pid namespace", unix.CLONE_NEWPID, "hiding other processes and whole-tree kill"},
		{"network namespace", unix.CLONE_NEWNET, "network isolation"},
		{"ipc namespace", unix.CLONE_NEWIPC, "SysV IPC isolation"},
		{"uts namespace", unix.CLONE_NEWUTS, "a private hostname"},
		{"cgroup namespace", unix.CLONE_NEWCGROUP, "a private cgroup view"},
	} {
		it := Feature{Name: ns.name, Required: true, Lost: ns.lost}
		if userns.Available {
			if err := tryNamespaces(ns.flag); err != nil {
				it.Detail = err.Error()
			} else {
				it.Available = true
			}
		} else {
			it.Detail = "needs user namespaces"
		}
		add(it)
	}

	sc := Feature{Name: "seccomp filter", Required: true, Lost: "the syscall filter (second wall)",
		Fix: "use a kernel built with CONFIG_SECCOMP_FILTER"}
	if acts := readSysctl("/proc/sys/kernel/seccomp/actions_avail"); acts != "" {
		sc.Available = true
		sc.Detail = "actions: " + acts
	}
	add(sc)
	un := Feature{Name: "seccomp user notification", Lost: "the list of denied syscalls in results",
		Fix: "Linux 5.0 or newer"}
	un.Available = strings.Contains(readSysctl("/proc/sys/kernel/seccomp/actions_avail"), "user_notif")
	add(un)

	ll := Feature{Name: "landlock", Required: true, Lost: "the Landlock filesystem and scoping wall",
		Fix: "Linux 5.13+ with CONFIG_SECURITY_LANDLOCK and landlock in the lsm= boot parameter; or run with --best-effort"}
	if abi, err := landlockABI(); err == nil && abi > 0 {
		ll.Available = true
		ll.Detail = fmt.Sprintf("ABI %d", abi)
		if abi < 6 {
			ll.Detail += " (signal and abstract-socket scoping need ABI 6)"
		}
	} else if err != nil {
		ll.Detail = err.Error()
	}
	add(ll)

	ci := cgroupDetect()
	cg := Feature{Name: "cgroups", Lost: "exact whole-tree limits (memory, processes, CPU); rlimits are used instead and reported as approximate",
		Fix: ci.Fix, Available: ci.CanCreate}
	var ctrls []string
	for c, ok := range ci.Controllers {
		if ok {
			ctrls = append(ctrls, c)
		}
	}
	cg.Detail = fmt.Sprintf("v%d, controllers %v", ci.Version, ctrls)
	if !ci.CanCreate {
		cg.Detail += ": " + ci.Reason
	}
	add(cg)

	// --net allow needs nftables' redirect inside the sandbox's user and
	// network namespaces; only a real try in such namespaces tells.
	na := Feature{Name: "network allow-list",
		Lost: "--net allow (listed hosts through the broker's proxy); --net none and --net host still work",
		Fix:  "a kernel with nf_tables and its NAT redirect (CONFIG_NF_TABLES, CONFIG_NFT_NAT, CONFIG_NFT_REDIR) usable in user namespaces"}
	if !helperRegistered {
		na.Detail = "not checked: this program does not call airlock.RunHelper, which --net allow needs"
	} else if exe, err := os.Executable(); err != nil {
		na.Detail = err.Error()
	} else if err := netnsCheck(exe); err != nil {
		na.Detail = err.Error()
	} else {
		na.Available, na.Detail = true, "nftables redirect in the sandbox's network namespace"
	}
	add(na)

	pf := Feature{Name: "pidfd", Lost: "race-free signalling of the sandbox", Fix: "Linux 5.3 or newer"}
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		unix.Close(fd)
		pf.Available = true
	}
	add(pf)
	_, _, e1 := syscall.RawSyscall(unix.SYS_OPEN_TREE, ^uintptr(0), 0, 0)
	_, _, e2 := syscall.RawSyscall6(unix.SYS_MOUNT_SETATTR, ^uintptr(0), 0, 0, 0, 0, 0)
	add(Feature{Name: "new mount API", Available: e1 != syscall.ENOSYS && e2 != syscall.ENOSYS,
		Lost: "recursive read-only binds (submounts of a bind keep their own flags)", Fix: "Linux 5.12 or newer"})
	ov := Feature{Name: "overlayfs in user namespaces", Detail: "for copy-on-write boxes (later)"}
	ov.Available = strings.Contains(readSysctl("/proc/filesystems"), "overlay")
	add(ov)
	if v := readSysctl("/proc/sys/dev/tty/legacy_tiocsti"); v != "" {
		add(Feature{Name: "TIOCSTI", Available: true, Detail: "legacy_tiocsti=" + v + "; airlock never hands the caller's terminal to the sandbox either way"})
	}
	return f
}
