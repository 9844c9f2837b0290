// Command target is the sandboxed program of the Wine smoke test.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(2)
	}
	switch os.Args[1] {
	case "exit": // exit N: write to both streams, exit N
		fmt.Fprint(os.Stdout, "to-stdout")
		fmt.Fprint(os.Stderr, "to-stderr")
		n, _ := strconv.Atoi(os.Args[2])
		os.Exit(n)
	case "args":
		json.NewEncoder(os.Stdout).Encode(os.Args[2:])
	case "env":
		json.NewEncoder(os.Stdout).Encode(os.Environ())
	case "cat":
		io.Copy(os.Stdout, os.Stdin)
	case "sleep":
		time.Sleep(time.Hour)
	case "tree": // tree N wait|exit: a chain of N descendants; print their pids
		n, _ := strconv.Atoi(os.Args[2])
		if n > 0 {
			c := exec.Command(os.Args[0], "tree", strconv.Itoa(n-1), "wait")
			out, _ := c.StdoutPipe()
			if err := c.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
			fmt.Printf("%d\n", c.Process.Pid)
			// Forward the descendants' pids, so the whole chain is
			// running when the last line is out.
			sc := bufio.NewScanner(out)
			for i := 0; i < n-1 && sc.Scan(); i++ {
				fmt.Println(sc.Text())
			}
		}
		if os.Args[3] == "wait" {
			time.Sleep(time.Hour)
		}
	}
}
