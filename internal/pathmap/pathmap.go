// Package pathmap holds the path and environment rewriting shared by the
// backends that have no private filesystem view (macOS, OpenBSD): there a
// tmpfs becomes a per-run host directory and the names that pointed at it
// are rewritten.
package pathmap

import "strings"

// Within reports whether p is dir or below it.
func Within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimRight(dir, "/")+"/")
}

// Rebase moves v from below from to below to; ok is false when v is not
// below from.
func Rebase(v, from, to string) (string, bool) {
	if v == from {
		return to, true
	}
	if strings.HasPrefix(v, strings.TrimRight(from, "/")+"/") {
		return to + v[len(strings.TrimRight(from, "/")):], true
	}
	return v, false
}

// SetEnv sets k=v in env, replacing an existing k.
func SetEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
