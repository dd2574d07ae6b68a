//go:build !unix

package storage

// noFollow is not available here: openJournalFile checks with Lstat
// before opening and with Stat after.
const noFollow = 0
