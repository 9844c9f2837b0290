// Package darwin turns an airlock policy into a Seatbelt (SBPL) profile for
// /usr/bin/sandbox-exec, plus the small launcher that applies rlimits before
// sandbox-exec runs. Profile generation is pure and runs (and is tested) on
// every OS; only the launcher's exec path is darwin-specific.
//
// Every path or other string that comes from the policy reaches sandbox-exec
// as a "-D NAME=value" parameter referenced by (param "NAME"); the profile
// text itself is built only from constants, parameter names, the broker's own
// tag and integers.
package darwin
