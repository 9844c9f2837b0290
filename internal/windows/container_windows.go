package windows

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"unsafe"

	xwin "golang.org/x/sys/windows"
)

// container is a per-run AppContainer profile.
type container struct {
	name string
	sid  *xwin.SID // Go copy
}

func randomName(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newContainer creates a fresh AppContainer profile for one run.
func newContainer() (*container, error) {
	name := randomName("airlock.run.")
	n := utf16Ptr(name)
	desc := utf16Ptr("airlock sandbox run")
	var sid *xwin.SID
	hr, err := callHR(procCreateAppContainerProf, uintptr(unsafe.Pointer(n)), uintptr(unsafe.Pointer(n)),
		uintptr(unsafe.Pointer(desc)), 0, 0, uintptr(unsafe.Pointer(&sid)))
	if hr == errHRESULTAlreadyExists {
		_, err = callHR(procDeriveAppContainerSid, uintptr(unsafe.Pointer(n)), uintptr(unsafe.Pointer(&sid)))
	}
	if err != nil {
		return nil, fmt.Errorf("create AppContainer profile: %w", err)
	}
	c := &container{name: name}
	c.sid, err = sid.Copy()
	xwin.FreeSid(sid)
	if err != nil {
		c.delete()
		return nil, err
	}
	return c, nil
}

func (c *container) delete() error {
	_, err := callHR(procDeleteAppContainerProf, uintptr(unsafe.Pointer(utf16Ptr(c.name))))
	return err
}

// capabilities turns capability SID strings into SID_AND_ATTRIBUTES.
func capabilities(sids []string) ([]xwin.SIDAndAttributes, error) {
	var out []xwin.SIDAndAttributes
	for _, s := range sids {
		sid, err := xwin.StringToSid(s)
		if err != nil {
			return nil, fmt.Errorf("capability %s: %w", s, err)
		}
		out = append(out, xwin.SIDAndAttributes{Sid: sid, Attributes: xwin.SE_GROUP_ENABLED})
	}
	return out, nil
}

// lowToken is the fallback: the caller's token with its privileges
// stripped (LUA) at low integrity.
func lowToken() (xwin.Token, error) {
	var cur xwin.Token
	if err := xwin.OpenProcessToken(xwin.CurrentProcess(), xwin.TOKEN_DUPLICATE|xwin.TOKEN_ASSIGN_PRIMARY|
		xwin.TOKEN_QUERY|xwin.TOKEN_ADJUST_DEFAULT|xwin.TOKEN_ADJUST_SESSIONID, &cur); err != nil {
		return 0, fmt.Errorf("open own token: %w", err)
	}
	defer cur.Close()
	const disableMaxPrivilege, luaToken = 0x1, 0x4
	var rt xwin.Token
	r, err := call(procCreateRestrictedToken, uintptr(cur), disableMaxPrivilege|luaToken, 0, 0, 0, 0, 0, 0,
		uintptr(unsafe.Pointer(&rt)))
	if r == 0 {
		return 0, fmt.Errorf("CreateRestrictedToken: %w", err)
	}
	low, err := xwin.CreateWellKnownSid(xwin.WinLowLabelSid)
	if err != nil {
		rt.Close()
		return 0, err
	}
	tml := xwin.Tokenmandatorylabel{Label: xwin.SIDAndAttributes{Sid: low, Attributes: xwin.SE_GROUP_INTEGRITY}}
	if err := xwin.SetTokenInformation(rt, xwin.TokenIntegrityLevel, (*byte)(unsafe.Pointer(&tml)), tml.Size()); err != nil {
		rt.Close()
		return 0, fmt.Errorf("set low integrity: %w", err)
	}
	return rt, nil
}

// newDesktop creates a private desktop on the current window station that
// the user, SYSTEM and the sandbox (AppContainer SID, or low integrity) can
// use, without hook, journal or switch rights for the sandbox.
func newDesktop(acSID string) (name string, h uintptr, err error) {
	tok := xwin.GetCurrentProcessToken()
	u, err := tok.GetTokenUser()
	if err != nil {
		return "", 0, err
	}
	sb := acSID
	if sb == "" {
		sb = u.User.Sid.String()
	}
	const sandboxRights = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x20000 // read, create window/menu, enumerate, write objects, READ_CONTROL
	sddl := fmt.Sprintf("D:(A;;GA;;;%s)(A;;GA;;;SY)(A;;0x%x;;;%s)S:(ML;;NW;;;LW)", u.User.Sid, sandboxRights, sb)
	sd, err := xwin.SecurityDescriptorFromString(sddl)
	if err != nil {
		return "", 0, err
	}
	sa := xwin.SecurityAttributes{Length: uint32(unsafe.Sizeof(xwin.SecurityAttributes{})), SecurityDescriptor: sd}
	name = randomName("airlock-")
	const genericAll = 0x10000000
	h, err = call(procCreateDesktopW, uintptr(unsafe.Pointer(utf16Ptr(name))), 0, 0, 0, genericAll, uintptr(unsafe.Pointer(&sa)))
	if h == 0 {
		return "", 0, fmt.Errorf("CreateDesktop: %w", err)
	}
	return name, h, nil
}

func closeDesktop(h uintptr) { call(procCloseDesktop, h) }
