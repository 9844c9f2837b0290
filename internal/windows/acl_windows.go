package windows

import (
	"os"
	"path/filepath"
	"strings"

	xwin "golang.org/x/sys/windows"
)

// NamedDACLStore reads and writes DACLs with Get/SetNamedSecurityInfo.
type NamedDACLStore struct{}

func (NamedDACLStore) ReadDACL(path string) (string, error) {
	sd, err := xwin.GetNamedSecurityInfo(path, xwin.SE_FILE_OBJECT, xwin.DACL_SECURITY_INFORMATION)
	if err != nil {
		return "", &os.PathError{Op: "GetNamedSecurityInfo", Path: path, Err: err}
	}
	return sd.String(), nil
}

func (NamedDACLStore) WriteDACL(path, sddl string) error {
	sd, err := xwin.SecurityDescriptorFromString(sddl)
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	// Keep the "inheritance blocked" flag as it was.
	info := xwin.SECURITY_INFORMATION(xwin.DACL_SECURITY_INFORMATION | xwin.UNPROTECTED_DACL_SECURITY_INFORMATION)
	if Protected(sddl) {
		info = xwin.DACL_SECURITY_INFORMATION | xwin.PROTECTED_DACL_SECURITY_INFORMATION
	}
	if err := xwin.SetNamedSecurityInfo(path, xwin.SE_FILE_OBJECT, info, nil, nil, dacl, nil); err != nil {
		return &os.PathError{Op: "SetNamedSecurityInfo", Path: path, Err: err}
	}
	return nil
}

// Self identifies the calling broker for the journal.
func Self() Owner {
	pid := xwin.GetCurrentProcessId()
	var c, e, k, u xwin.Filetime
	h, _ := xwin.GetCurrentProcess()
	xwin.GetProcessTimes(h, &c, &e, &k, &u)
	return Owner{PID: int(pid), Start: c.Nanoseconds()}
}

// Alive reports whether the broker o still runs. When unsure it says yes,
// so a running broker's grants are never taken away.
func Alive(o Owner) bool {
	h, err := xwin.OpenProcess(xwin.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(o.PID))
	if err != nil {
		return err != xwin.ERROR_INVALID_PARAMETER // no such process
	}
	defer xwin.CloseHandle(h)
	var c, e, k, u xwin.Filetime
	if xwin.GetProcessTimes(h, &c, &e, &k, &u) != nil {
		return true
	}
	if c.Nanoseconds() != o.Start {
		return false // the pid was reused
	}
	var code uint32
	if xwin.GetExitCodeProcess(h, &code) == nil && code != 259 { // STILL_ACTIVE
		return false
	}
	return true
}

// DefaultJournal is %LOCALAPPDATA%\airlock\grants.journal for this broker.
func DefaultJournal(run string) (*Journal, error) {
	dir, err := xwin.KnownFolderPath(xwin.FOLDERID_LocalAppData, 0)
	if err != nil || dir == "" {
		dir = os.Getenv("LOCALAPPDATA")
	}
	if dir == "" {
		return nil, os.ErrNotExist
	}
	return &Journal{File: filepath.Join(dir, "airlock", "grants.journal"), Store: NamedDACLStore{},
		Self: Self(), Alive: Alive, Run: run}, nil
}

// SystemDirs are the directories every AppContainer can read already.
func SystemDirs() []string {
	var out []string
	for _, k := range []string{"SystemRoot", "ProgramFiles", "ProgramFiles(x86)", "ProgramW6432"} {
		if v := os.Getenv(k); v != "" && !strings.ContainsRune(v, 0) {
			out = append(out, v)
		}
	}
	return out
}
