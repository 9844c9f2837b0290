package cgroup

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
)

// procCgroup is /proc/<pid>/cgroup: the process's cgroup path per v1
// controller and, on v2 or hybrid hosts, in the unified hierarchy.
type procCgroup struct {
	v1         map[string]string // controller (or name=x) -> path
	unified    string
	hasUnified bool
}

// parseProcCgroup parses lines "id:controller,controller:path"; v2 is "0::path".
func parseProcCgroup(data string) (procCgroup, error) {
	pc := procCgroup{v1: map[string]string{}}
	for _, line := range strings.Split(data, "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return procCgroup{}, fmt.Errorf("cgroup: bad /proc/self/cgroup line %q", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			pc.unified, pc.hasUnified = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "" {
				pc.v1[c] = parts[2]
			}
		}
	}
	return pc, nil
}

// mount is one cgroup or cgroup2 line of /proc/self/mountinfo.
type mount struct {
	root, point, fstype string
	options             []string // super options: the v1 controllers are here
}

// parseMountinfo returns the cgroup and cgroup2 mounts, in file order.
func parseMountinfo(data string) []mount {
	var ms []mount
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(f) {
			continue
		}
		fstype := f[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		ms = append(ms, mount{
			root:    unescapeMount(f[3]),
			point:   unescapeMount(f[4]),
			fstype:  fstype,
			options: strings.Split(f[sep+3], ","),
		})
	}
	return ms
}

// unescapeMount undoes the kernel's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (m mount) has(controller string) bool {
	for _, o := range m.options {
		if o == controller {
			return true
		}
	}
	return false
}

// dirFor maps a cgroup path to a directory under this mount; false when the
// mount does not show that part of the hierarchy.
func (m mount) dirFor(cgPath string) (string, bool) {
	root := path.Clean(m.root)
	p := path.Clean(cgPath)
	switch {
	case root == "/":
		return path.Join(m.point, p), true
	case p == root:
		return m.point, true
	case strings.HasPrefix(p, root+"/"):
		return path.Join(m.point, strings.TrimPrefix(p, root)), true
	}
	return "", false
}

// parseKeyed parses flat keyed files: "key value" lines (memory.events,
// cpu.stat, pids.events, memory.oom_control). Unparsable values are skipped.
func parseKeyed(data string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

// cfsPeriod is the CFS period airlock uses, in microseconds.
const cfsPeriod = 100000

// cpuQuota converts CPUs to a CFS quota per cfsPeriod, in microseconds; -1 is
// unlimited. The kernel refuses quotas under 1 ms.
func cpuQuota(cpus float64) int64 {
	if cpus <= 0 || math.IsNaN(cpus) || math.IsInf(cpus, 0) {
		return -1
	}
	q := int64(math.Round(cpus * cfsPeriod))
	if q < 1000 {
		q = 1000
	}
	return q
}

// cpuMax formats v2 cpu.max for CPUs, e.g. 1.5 -> "150000 100000".
func cpuMax(cpus float64) string {
	q := cpuQuota(cpus)
	if q < 0 {
		return fmt.Sprintf("max %d", cfsPeriod)
	}
	return fmt.Sprintf("%d %d", q, cfsPeriod)
}

const namePrefix = "airlock-"

// leafName is the v2 leaf the broker moves itself into when its own cgroup
// must hand controllers down (no internal processes rule).
const leafName = "airlock-broker"

func groupName(brokerPID int, random string) string {
	return fmt.Sprintf("%s%d-%s", namePrefix, brokerPID, random)
}

// parseGroupName returns the broker pid of an airlock-<pid>-<random> name.
func parseGroupName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	num, random, ok := strings.Cut(rest, "-")
	if !ok || random == "" || strings.ContainsAny(random, "/") {
		return 0, false
	}
	pid, err := strconv.Atoi(num)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != num {
		return 0, false
	}
	return pid, true
}
