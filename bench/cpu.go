package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times
// (100 on every architecture Go builds for).
const clockTick = 10 * time.Millisecond

// procCPU is the CPU time (user + system, every thread) a process has used
// so far, from /proc/<pid>/stat; 10 ms resolution.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	d, ok := parseStatCPU(string(b))
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat not understood", pid)
	}
	return d, nil
}

// parseStatCPU reads utime + stime from a /proc/<pid>/stat line.
func parseStatCPU(s string) (time.Duration, bool) {
	// the command name (field 2) is in parentheses and may hold spaces
	// and parentheses: fields are counted after the last ')'
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 63)
	stime, err2 := strconv.ParseUint(f[12], 10, 63)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}
