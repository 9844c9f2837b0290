// Package airlock runs untrusted programs in a sandbox that grants nothing by
// default: no network, no access to the user's files, no view of other
// processes and no privileges. A Policy grants exactly what a program needs;
// Command returns a *Cmd that behaves like os/exec.Cmd.
//
//	cmd := airlock.Command(airlock.DefaultPolicy(), "python3", "x.py")
//	out, err := cmd.Output()
//	fmt.Println(cmd.Result.Status, cmd.Result.CPUTime)
//
// Each OS enforces the policy with its own mechanisms (Linux: namespaces,
// seccomp, Landlock and cgroups). When a protection the policy asks for cannot
// be enforced, Start fails unless Policy.Enforce is BestEffort; Result.Enforced
// always says what was in force.
package airlock
