// Package netns builds the sandbox's side of the network policy.
//
// The launcher starts HelperMain inside the sandbox's (still empty) user and
// network namespaces before the target runs. The helper brings lo up, makes
// every address local, installs nftables rules that redirect all outgoing TCP
// to one capture listener and UDP port 53 to a DNS stub, creates those
// listening sockets, hands them to the broker over fd 3 (SCM_RIGHTS) and
// exits. The broker serves the sockets; nothing inside the sandbox is trusted.
// If any step fails the sandbox simply has no connectivity.
//
// For --net-forward the helper also listens on the forwarded loopback
// addresses, and for --publish it makes a pool of unconnected TCP sockets
// of the namespace that the broker connects to sandbox ports. With
// Config.NoEgress (--net none) it makes only those.
package netns
