package windows

import (
	"unsafe"

	xwin "golang.org/x/sys/windows"
)

// Feature is one probed mechanism (mirrors airlock.Feature).
type Feature struct {
	Name      string
	Available bool
	Detail    string
	Lost      string
}

// Probe reports which mechanisms this Windows provides, by looking the
// functions up and trying the job settings on a scratch job.
func Probe() []Feature {
	have := func(p *xwin.LazyProc) bool { return p.Find() == nil }
	var out []Feature
	ac := have(procCreateAppContainerProf) && have(procDeleteAppContainerProf)
	out = append(out, Feature{Name: "appcontainer", Available: ac,
		Detail: "userenv.dll CreateAppContainerProfile", Lost: "file-read and network confinement (fallback: restricted low-integrity token)"})
	out = append(out, Feature{Name: "restricted-token", Available: have(procCreateRestrictedToken),
		Detail: "advapi32.dll CreateRestrictedToken", Lost: "the fallback when AppContainer is missing"})
	out = append(out, Feature{Name: "desktop", Available: have(procCreateDesktopW),
		Detail: "user32.dll CreateDesktopW", Lost: "window-message isolation from the user's desktop"})
	job, err := xwin.CreateJobObject(nil, nil)
	out = append(out, Feature{Name: "job", Available: err == nil, Detail: "job object", Lost: "limits and killing the whole tree"})
	if err == nil {
		defer xwin.CloseHandle(job)
		r := jobCPURate{ControlFlags: CPURateEnable | CPURateHardCap, CPURate: 10000}
		err := setJobInfo(job, jobObjectCPURateControlInfo, unsafe.Pointer(&r), unsafe.Sizeof(r))
		f := Feature{Name: "cpu-rate", Available: err == nil, Detail: "job CPU rate control", Lost: "the --cpus limit"}
		if err != nil {
			f.Detail += ": " + err.Error()
		}
		out = append(out, f)
	}
	return out
}
