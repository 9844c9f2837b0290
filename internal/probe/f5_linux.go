package probe

import (
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

func init() {
	register("F5", "f", "socketcall multiplexer from 32-bit code", probeF5)
	helpers["socketcall-child"] = func([]string, map[string]string) int {
		if runtime.GOARCH != "amd64" {
			fmt.Println("unsupported on", runtime.GOARCH)
			return 0
		}
		// AF_ALG and AF_VSOCK: the families seccomp filters block by number.
		var errs []string
		for _, f := range []struct{ fam, typ int }{{unix.AF_ALG, unix.SOCK_SEQPACKET}, {unix.AF_VSOCK, unix.SOCK_STREAM}} {
			fd, e := socketcall32(f.fam, f.typ)
			if e == 0 {
				fmt.Println("ok family", f.fam, "fd", fd)
				return 0
			}
			errs = append(errs, errnoName(e))
		}
		fmt.Println(strings.Join(errs, ","))
		return 0
	}
}

// probeF5 creates an AF_ALG socket through i386 socketcall, where the
// family sits behind a pointer BPF cannot read.
func probeF5(p *run) {
	out, st, err := child("socketcall-child", nil)
	switch {
	case killedBySIGSYS(st):
		p.step("int80 socketcall(AF_ALG, AF_VSOCK)", fmt.Errorf("killed by SIGSYS"))
	case err != nil:
		p.step("int80 socketcall(AF_ALG, AF_VSOCK)", fmt.Errorf("%v %s", err, out))
	case strings.HasPrefix(out, "ok"):
		p.step("int80 socketcall(AF_ALG, AF_VSOCK)", nil)
		p.escape("AF_ALG socket through 32-bit socketcall (%s)", out)
	case strings.HasPrefix(out, "unsupported"):
		p.note("%s", out)
	default:
		p.step("int80 socketcall(AF_ALG, AF_VSOCK)", fmt.Errorf("%s", out))
	}
}
