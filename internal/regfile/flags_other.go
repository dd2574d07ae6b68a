//go:build !unix

package regfile

// Without O_NONBLOCK and O_NOFOLLOW, open checks with Lstat before opening
// and with Stat after.
const nonBlock, noFollow = 0, 0
