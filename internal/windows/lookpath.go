package windows

import (
	"fmt"
	"strings"
)

// LookPath resolves the program name the way the sandbox would see it:
// through the PATH of the sandbox's environment (not the broker's), trying
// .exe and .com when name has no extension. Relative names with a
// separator are taken from dir. isFile says whether a path is a file.
func LookPath(name string, env []string, dir string, isFile func(string) bool) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty program name")
	}
	try := func(p string) (string, bool) {
		base := p[strings.LastIndexAny(p, `\/`)+1:]
		if strings.Contains(base, ".") && isFile(p) {
			return p, true
		}
		for _, ext := range []string{".exe", ".com"} {
			if isFile(p + ext) {
				return p + ext, true
			}
		}
		return "", false
	}
	if strings.ContainsAny(name, `\/:`) {
		p := name
		if !isAbs(p) && dir != "" {
			p = strings.TrimRight(dir, `\/`) + `\` + p
		}
		if r, ok := try(p); ok {
			return r, nil
		}
		return "", fmt.Errorf("program %s not found", p)
	}
	path := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "PATH") {
			path = v
		}
	}
	for _, d := range strings.Split(path, ";") {
		d = strings.Trim(d, `"`)
		if d == "" {
			continue
		}
		if r, ok := try(strings.TrimRight(d, `\/`) + `\` + name); ok {
			return r, nil
		}
	}
	return "", fmt.Errorf("program %q not found in the sandbox's PATH %q", name, path)
}

// isAbs reports whether p is a drive-absolute (C:\x) or UNC (\\h\s) path.
func isAbs(p string) bool {
	if strings.HasPrefix(p, `\\`) || strings.HasPrefix(p, "//") {
		return true
	}
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}
