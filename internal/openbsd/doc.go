// Package openbsd plans and applies an OpenBSD sandbox: a launcher (the
// airlock binary re-executed with a hidden argument) calls unveil for each
// granted path, locks unveil, sets exec promises with pledge and rlimits,
// then execs the target. The plan is plain data, built and tested on every
// OS; only applying it is OpenBSD-specific.
package openbsd
