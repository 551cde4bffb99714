package contract

import "syscall"

// dieWithParent makes the kernel kill stripe-mock if the test binary dies without running its
// cleanups (a -timeout panic, a SIGKILL), so no mock outlives the test.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
