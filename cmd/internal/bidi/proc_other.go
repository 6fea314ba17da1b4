//go:build !unix

package bidi

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills Firefox itself; elsewhere its content processes
// exit when it does.
func killProcessGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
