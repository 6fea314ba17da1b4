//go:build unix

package bidi

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes Firefox the leader of a new process group, so that
// killProcessGroup reaches its content processes too.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills Firefox's process group (the group Start created
// for it; its id is Firefox's pid).
func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
