package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare of the container's memory limit becomes the Go runtime's soft memory limit
// unless GOMEMLIMIT is set. Near it the collector runs more often rather than the kernel killing
// the manager; the rest is left to what the runtime does not count (the binary's pages, thread
// stacks outside the heap, buffers of the kernel charged to the container).
const memoryLimitShare = 0.9

// cgroupMemoryLimit reads the memory limit of the cgroup the process runs in, under root
// (/sys/fs/cgroup in a container): memory.max (cgroup v2) or memory/memory.limit_in_bytes (v1).
// False when neither holds a limit: "max", or v1's "unlimited", a page-rounded value near MaxInt64.
func cgroupMemoryLimit(root string) (int64, bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// applyContainerMemoryLimit sets the runtime's soft memory limit to memoryLimitShare of the
// cgroup's limit, unless GOMEMLIMIT is set or there is no limit; it returns the limit it set.
func applyContainerMemoryLimit(root string) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	limit, ok := cgroupMemoryLimit(root)
	if !ok {
		return 0, false
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft, true
}
