package seccomp

import (
	"strings"
	"sync"
)

type compiled struct {
	f     *Filter
	insns []SockFilter
}

var cache sync.Map // key string -> *compiled

// Build is Preset + Adjust + (WithNotify) + Compile, memoized per process:
// the second run with the same policy costs a map lookup. The returned
// Filter and program are shared: callers must not modify them.
func Build(preset string, allow, deny []string, notify bool, arch string) (*Filter, []SockFilter, error) {
	key := strings.Join([]string{preset, strings.Join(allow, ","), strings.Join(deny, ","), boolStr(notify), arch}, "|")
	if c, ok := cache.Load(key); ok {
		c := c.(*compiled)
		return c.f, c.insns, nil
	}
	f, err := Preset(preset)
	if err != nil {
		return nil, nil, err
	}
	if err := f.Adjust(allow, deny); err != nil {
		return nil, nil, err
	}
	if notify {
		f = f.WithNotify()
	}
	insns, err := f.Compile(arch)
	if err != nil {
		return nil, nil, err
	}
	c, _ := cache.LoadOrStore(key, &compiled{f, insns})
	return c.(*compiled).f, c.(*compiled).insns, nil
}

func boolStr(b bool) string {
	if b {
		return "notify"
	}
	return "errno"
}
