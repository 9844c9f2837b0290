package seccomp

import (
	"strings"
	"sync"
)

type compiled struct {
	filter func() (*Filter, error)
	insns  []SockFilter
}

var cache sync.Map // key string -> *compiled

// Build is Preset + Adjust + WithNotifyExcept(quiet...) (when notify) +
// Compile, memoized per process: the second launch with the same policy
// costs a map lookup. Without adjustments the program comes from the
// precompiled table, and the Filter (needed only to answer and name
// denials) is built on the first call of filter. The Filter and program
// are shared: callers must not modify them.
func Build(preset string, allow, deny []string, notify bool, quiet []string, arch string) (filter func() (*Filter, error), insns []SockFilter, err error) {
	key := strings.Join([]string{preset, strings.Join(allow, ","), strings.Join(deny, ","), boolStr(notify), strings.Join(quiet, ","), arch}, "|")
	if c, ok := cache.Load(key); ok {
		c := c.(*compiled)
		return c.filter, c.insns, nil
	}
	build := func() (*Filter, error) {
		f, err := Preset(preset)
		if err != nil {
			return nil, err
		}
		if err := f.Adjust(allow, deny); err != nil {
			return nil, err
		}
		if notify {
			f = f.WithNotifyExcept(quiet...)
		}
		return f, nil
	}
	c := &compiled{}
	if len(allow)+len(deny) == 0 {
		c.insns = Precompiled(preset, notify, quiet, arch)
	}
	if c.insns != nil {
		c.filter = sync.OnceValues(build)
	} else {
		f, err := build()
		if err != nil {
			return nil, nil, err
		}
		if c.insns, err = f.Compile(arch); err != nil {
			return nil, nil, err
		}
		c.filter = func() (*Filter, error) { return f, nil }
	}
	v, _ := cache.LoadOrStore(key, c)
	return v.(*compiled).filter, v.(*compiled).insns, nil
}

func boolStr(b bool) string {
	if b {
		return "notify"
	}
	return "errno"
}
