//go:build unix

package regfile

import "syscall"

// nonBlock keeps open from waiting for a FIFO's writer; noFollow refuses a
// symbolic link.
const nonBlock, noFollow = syscall.O_NONBLOCK, syscall.O_NOFOLLOW
