// Present so the bodyless runtime hooks declared with go:linkname compile.
