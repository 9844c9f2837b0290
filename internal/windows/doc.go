// Package windows builds and runs airlock's Windows sandbox: an
// AppContainer with no capabilities (or, where AppContainer is missing, a
// restricted low-integrity token), a job object that bounds and kills the
// whole tree, an alternate desktop, process mitigation policies, explicit
// handle inheritance and an explicit environment block.
//
// The decisions (policy -> plan, SDDL, command-line quoting, environment
// block, grants journal) are plain Go and tested on every OS; the system
// calls live in the _windows.go files.
package windows
