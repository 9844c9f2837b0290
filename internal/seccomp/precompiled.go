package seccomp

import "strings"

// Precompiled returns the program that Preset(preset), with
// WithNotifyExcept(quiet...) when notify, compiles to for arch, from a
// table generated ahead (zprecompiled.go), or nil when the table does not
// have it. Compiling the default preset costs about 0.3 ms, which a
// one-shot `airlock run` would pay on every launch. TestPrecompiledCurrent
// keeps the table equal to the compiler's output; regenerate it with
// `go test ./internal/seccomp -run TestPrecompiledCurrent -update`.
func Precompiled(preset string, notify bool, quiet []string, arch string) []SockFilter {
	return precompiledFor(precompiledKey(preset, notify, quiet, arch))
}

// precompiledProgram is one table entry. The table is an array, not a
// map: an array of constants is static data, a map is built at start.
type precompiledProgram struct {
	key  string
	prog []SockFilter
}

func precompiledFor(key string) []SockFilter {
	for i := range precompiled {
		if precompiled[i].key == key {
			return precompiled[i].prog
		}
	}
	return nil
}

func precompiledKey(preset string, notify bool, quiet []string, arch string) string {
	if preset == "" {
		preset = "default"
	}
	return preset + "|" + boolStr(notify) + "|" + strings.Join(quiet, ",") + "|" + arch
}

// precompiledSet is what the table holds: each preset as airlock installs
// it (notify for all but strict, clone3 quiet), for each architecture.
func precompiledSet() (keys []string, build []func() ([]SockFilter, error)) {
	for _, preset := range []string{"default", "strict", "permissive"} {
		notify := preset != "strict"
		var quiet []string
		if notify {
			quiet = []string{"clone3"}
		}
		for _, arch := range Arches() {
			keys = append(keys, precompiledKey(preset, notify, quiet, arch))
			build = append(build, func() ([]SockFilter, error) {
				f, err := Preset(preset)
				if err != nil {
					return nil, err
				}
				if notify {
					f = f.WithNotifyExcept(quiet...)
				}
				return f.Compile(arch)
			})
		}
	}
	return keys, build
}
