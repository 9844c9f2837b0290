package windows

import (
	"fmt"
	"strings"
)

// Access is what a grant allows on a path.
type Access int

const (
	// Read is read, list and execute.
	Read Access = iota
	// Modify adds write, create and delete, but not changing the DACL or
	// owner.
	Modify
)

func (a Access) String() string {
	if a == Modify {
		return "rw"
	}
	return "ro"
}

// File access rights, from winnt.h.
const (
	fileGenericRead    = 0x120089
	fileGenericWrite   = 0x120116
	fileGenericExecute = 0x1200a0
	deleteRight        = 0x10000
)

// Mask is the access mask of an ACE granting a.
func (a Access) Mask() uint32 {
	m := uint32(fileGenericRead | fileGenericExecute)
	if a == Modify {
		m |= fileGenericWrite | deleteRight
	}
	return m
}

// ACE is the SDDL string of an allow ACE for sid; on a directory it is
// inherited by everything below it.
func ACE(sid string, a Access, dir bool) string {
	flags := ""
	if dir {
		flags = "OICI"
	}
	return fmt.Sprintf("(A;%s;0x%x;;;%s)", flags, a.Mask(), sid)
}

// dacl is a DACL in SDDL split into its header ("D:PAI") and ACE strings.
type dacl struct {
	head string
	aces []string
}

// parseDACL splits an SDDL string holding only a DACL ("D:flags(ace)...").
// Conditional ACEs may nest parentheses; they are kept whole.
func parseDACL(s string) (dacl, error) {
	if !strings.HasPrefix(s, "D:") {
		return dacl{}, fmt.Errorf("SDDL %q: want a DACL (D:...)", s)
	}
	i := strings.IndexByte(s, '(')
	if i < 0 {
		return dacl{head: s}, nil
	}
	d := dacl{head: s[:i]}
	depth, startAt := 0, i
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '(':
			if depth == 0 {
				startAt = j
			}
			depth++
		case ')':
			depth--
			if depth < 0 {
				return dacl{}, fmt.Errorf("SDDL %q: unbalanced parentheses", s)
			}
			if depth == 0 {
				d.aces = append(d.aces, s[startAt:j+1])
			}
		default:
			if depth == 0 {
				return dacl{}, fmt.Errorf("SDDL %q: text between ACEs (a SACL or owner is not expected)", s)
			}
		}
	}
	if depth != 0 {
		return dacl{}, fmt.Errorf("SDDL %q: unbalanced parentheses", s)
	}
	return d, nil
}

func (d dacl) String() string { return d.head + strings.Join(d.aces, "") }

// aceFields returns the type, flags and trustee of an ACE string.
func aceFields(ace string) (typ, flags, sid string) {
	f := strings.Split(strings.Trim(ace, "()"), ";")
	if len(f) < 6 {
		return "", "", ""
	}
	return f[0], f[1], f[5]
}

// AddACE inserts ace into the DACL sddl in canonical order: after the
// explicit ACEs (so explicit denies still come first) and before the
// inherited ones.
func AddACE(sddl, ace string) (string, error) {
	d, err := parseDACL(sddl)
	if err != nil {
		return "", err
	}
	if strings.Contains(d.head, "NO_ACCESS_CONTROL") {
		// A NULL DACL already lets everyone in; adding an ACE would turn
		// it into a DACL that lets only the sandbox in.
		return sddl, nil
	}
	at := len(d.aces)
	for i, a := range d.aces {
		if _, flags, _ := aceFields(a); strings.Contains(flags, "ID") {
			at = i
			break
		}
	}
	d.aces = append(d.aces[:at], append([]string{ace}, d.aces[at:]...)...)
	return d.String(), nil
}

// RemoveSID drops every explicit ACE whose trustee is sid.
func RemoveSID(sddl, sid string) (string, error) {
	d, err := parseDACL(sddl)
	if err != nil {
		return "", err
	}
	kept := d.aces[:0]
	for _, a := range d.aces {
		_, flags, who := aceFields(a)
		if strings.EqualFold(who, sid) && !strings.Contains(flags, "ID") {
			continue
		}
		kept = append(kept, a)
	}
	d.aces = kept
	return d.String(), nil
}

// HasSID reports whether an explicit ACE names sid.
func HasSID(sddl, sid string) bool {
	d, err := parseDACL(sddl)
	if err != nil {
		return false
	}
	for _, a := range d.aces {
		if _, flags, who := aceFields(a); strings.EqualFold(who, sid) && !strings.Contains(flags, "ID") {
			return true
		}
	}
	return false
}

// Protected reports whether the DACL blocks inheritance ("D:P...").
func Protected(sddl string) bool {
	d, err := parseDACL(sddl)
	if err != nil {
		return false
	}
	return strings.Contains(strings.TrimPrefix(d.head, "D:"), "P")
}
