// Package probe holds airlock's hostile probes: small attacks, one per
// THREATS.md class, compiled into the airlock binary so `airlock selftest`
// needs no compiler or extra files on the user's host. The CLI dispatches
// `airlock __probe ID [key=value...]` to Main. Each probe makes its attack
// with real system calls, prints one JSON line (a Report) from its own view
// and exits; the host-side oracles in internal/selftest decide the verdict
// where they can.
//
// Probes that would be destructive if they succeeded only open for writing
// and never write. Resource probes bound themselves (time and units) so an
// unsandboxed validation run cannot hurt the host.
package probe
