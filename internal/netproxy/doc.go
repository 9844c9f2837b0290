// Package netproxy is the broker side of the sandbox's network policy: a DNS
// stub that hands out synthetic addresses for allowed names, a transparent
// TCP proxy for connections captured inside the sandbox, and an HTTP proxy
// for proxy-aware tools. The broker resolves names itself, checks the policy,
// refuses private destinations, dials, and logs every attempt.
package netproxy
