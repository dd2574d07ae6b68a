package discord

import (
	"strconv"
	"testing"
)

// The bot keeps at most maxThreads threads: beyond, those that show
// nothing are forgotten, and those that show something, or wait for their
// Discord thread to be started, are kept.
func TestThreadsAreBounded(t *testing.T) {
	b := &Bot{threads: map[string]*thread{}}
	busy := b.thread("busy", "c", "g")
	busy.statusID = "m1"
	pending := b.pendingThread("pending", "c", "g")
	for i := range maxThreads + 10 {
		b.thread(strconv.Itoa(i), "c", "g")
	}
	if n := len(b.threads); n > maxThreads {
		t.Errorf("the bot keeps %d threads, more than %d", n, maxThreads)
	}
	if b.threads["busy"] != busy || b.threads["pending"] != pending {
		t.Error("a thread showing a status message, or waiting to be started, was forgotten")
	}
	if b.thread("busy", "c", "g") != busy {
		t.Error("the busy thread is no longer shared")
	}
}
