// Package selftest proves airlock's protections on the host it runs on:
// it sets up host fixtures (canary files, a victim process, socket servers,
// a keyring key, a pseudo-terminal, IPC objects, inherited fds), runs each
// hostile probe of internal/probe (in a sandbox, or bare to validate the
// probe), checks the fixtures from outside, and prints a scorecard grouped
// by THREATS.md category.
package selftest
