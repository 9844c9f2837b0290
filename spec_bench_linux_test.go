package airlock

import (
	"os"
	"testing"
)

// BenchmarkLinuxSpec measures the broker's per-run policy compilation.
func BenchmarkLinuxSpec(b *testing.B) {
	p := DefaultPolicy().withDefaults()
	l := &launch{Policy: p, Path: "/bin/true", Args: []string{"true"}, Dir: "/", Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr}}
	for i := 0; i < b.N; i++ {
		var f filterFunc
		if _, _, err := linuxSpec(l, &f); err != nil {
			b.Fatal(err)
		}
	}
}
