//go:build !linux

package contract

import "syscall"

// dieWithParent has no portable equivalent of Linux's Pdeathsig; t.Cleanup still kills
// stripe-mock whenever the test ends normally or fails.
func dieWithParent() *syscall.SysProcAttr {
	return nil
}
