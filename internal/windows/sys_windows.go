package windows

import (
	"errors"
	"fmt"
	"unsafe"

	xwin "golang.org/x/sys/windows"
)

// Functions x/sys/windows does not wrap, loaded on first use so a missing
// one (older Windows, Wine) is a clear error instead of a load failure.
var (
	userenv                     = xwin.NewLazySystemDLL("userenv.dll")
	procCreateAppContainerProf  = userenv.NewProc("CreateAppContainerProfile")
	procDeriveAppContainerSid   = userenv.NewProc("DeriveAppContainerSidFromAppContainerName")
	procDeleteAppContainerProf  = userenv.NewProc("DeleteAppContainerProfile")
	advapi32                    = xwin.NewLazySystemDLL("advapi32.dll")
	procCreateRestrictedToken   = advapi32.NewProc("CreateRestrictedToken")
	user32                      = xwin.NewLazySystemDLL("user32.dll")
	procCreateDesktopW          = user32.NewProc("CreateDesktopW")
	procCloseDesktop            = user32.NewProc("CloseDesktop")
	kernel32                    = xwin.NewLazySystemDLL("kernel32.dll")
	procIsProcessInJob          = kernel32.NewProc("IsProcessInJob")
	errHRESULTAlreadyExists     = uintptr(0x800700B7)
	procThreadAttrSecurityCaps  = uintptr(0x00020009)
	procThreadAttrChildPolicy   = uintptr(0x0002000e)
	childProcessRestricted      = uint32(0x1)
	jobObjectCPURateControlInfo = uint32(15)
)

// ErrMissingAPI wraps errors for Windows functions this host lacks.
var ErrMissingAPI = errors.New("Windows function not available")

// call runs a lazily loaded function; the returned error is the Find
// failure (wrapping ErrMissingAPI) or the call's last error.
func call(p *xwin.LazyProc, args ...uintptr) (uintptr, error) {
	if err := p.Find(); err != nil {
		return 0, fmt.Errorf("%w: %s (%v)", ErrMissingAPI, p.Name, err)
	}
	r, _, e := p.Call(args...)
	return r, e
}

// callHR runs a function returning an HRESULT.
func callHR(p *xwin.LazyProc, args ...uintptr) (uintptr, error) {
	if err := p.Find(); err != nil {
		return 0, fmt.Errorf("%w: %s (%v)", ErrMissingAPI, p.Name, err)
	}
	hr, _, _ := p.Call(args...)
	if hr != 0 {
		return hr, fmt.Errorf("%s: HRESULT 0x%08X", p.Name, uint32(hr))
	}
	return 0, nil
}

type securityCapabilities struct {
	AppContainerSid *xwin.SID
	Capabilities    *xwin.SIDAndAttributes
	CapabilityCount uint32
	Reserved        uint32
}

type jobCPURate struct {
	ControlFlags uint32
	CPURate      uint32
}

type jobAssociateCompletionPort struct {
	CompletionKey  uintptr
	CompletionPort xwin.Handle
}

type jobBasicAccounting struct {
	TotalUserTime             int64
	TotalKernelTime           int64
	ThisPeriodTotalUserTime   int64
	ThisPeriodTotalKernelTime int64
	TotalPageFaultCount       uint32
	TotalProcesses            uint32
	ActiveProcesses           uint32
	TotalTerminatedProcesses  uint32
}

type jobBasicAndIOAccounting struct {
	Basic jobBasicAccounting
	IO    xwin.IO_COUNTERS
}

func utf16Ptr(s string) *uint16 {
	p, err := xwin.UTF16PtrFromString(s)
	if err != nil {
		return nil
	}
	return p
}

func setJobInfo(job xwin.Handle, class uint32, p unsafe.Pointer, size uintptr) error {
	_, err := xwin.SetInformationJobObject(job, class, uintptr(p), uint32(size))
	return err
}
