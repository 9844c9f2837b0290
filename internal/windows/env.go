package windows

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// EnvBlock builds the CREATE_UNICODE_ENVIRONMENT block for env: exactly
// these variables (nothing inherited), later duplicates winning with names
// compared case-insensitively as Windows does, sorted by upper-cased name,
// each NUL-terminated, the block ending with an extra NUL.
func EnvBlock(env []string) ([]uint16, error) {
	type kv struct{ k, line string }
	idx := map[string]int{}
	var vars []kv
	for _, e := range env {
		if strings.ContainsRune(e, 0) {
			return nil, fmt.Errorf("environment entry %q contains a NUL byte", e)
		}
		// A leading '=' belongs to the name (=C:=C:\dir per-drive variables).
		eq := strings.IndexByte(e[min(1, len(e)):], '=')
		if eq < 0 {
			return nil, fmt.Errorf("environment entry %q: want NAME=VALUE", e)
		}
		name := e[:eq+min(1, len(e))]
		if name == "" {
			return nil, fmt.Errorf("environment entry %q: empty name", e)
		}
		key := strings.ToUpper(name)
		if i, ok := idx[key]; ok {
			vars[i].line = e
			continue
		}
		idx[key] = len(vars)
		vars = append(vars, kv{key, e})
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].k < vars[j].k })
	var block []uint16
	for _, v := range vars {
		block = append(block, utf16.Encode([]rune(v.line))...)
		block = append(block, 0)
	}
	if len(block) == 0 {
		block = append(block, 0)
	}
	return append(block, 0), nil
}
