package console

import (
	"bufio"
	"io"
	"unicode/utf8"

	"github.com/easel-bot/easel/core"
)

// lineLimits returns the longest line Run reads whole, in bytes, and the
// prompt limit, in characters, that its refusal of a longer line names.
// The line has room for the longest prompt the engine accepts (four bytes
// a character) and for flags, and is never shorter than 1 MiB, so a line
// over it is over the engine's limit too. An engine with no limit gets the
// fewest characters such a line can have.
func lineLimits(lim core.Limits) (maxBytes, maxChars int) {
	maxBytes = max(1<<20, 4*lim.MaxPromptChars+64<<10)
	if lim.MaxPromptChars > 0 {
		return maxBytes, lim.MaxPromptChars
	}
	return maxBytes, maxBytes / 4
}

// lineReader reads lines, holding at most max bytes of any one: the rest of
// a longer line is read, counted and dropped, so that a line of any length
// costs bounded memory and the lines after it are still read.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte // the line being read, up to max bytes and its line ending
}

// inputLine is one result of lineReader.next.
type inputLine struct {
	text  string
	chars int
	long  bool
	err   error
}

// readLines reads lines from l in a goroutine, so that a reader waiting for
// input can be abandoned, and sends each on the channel it returns, the
// last with an error (io.EOF at the end of the input). It stops sending when
// stop is closed; a read already under way ends with the process.
func readLines(l *lineReader, stop <-chan struct{}) <-chan inputLine {
	out := make(chan inputLine)
	go func() {
		for {
			var ln inputLine
			ln.text, ln.chars, ln.long, ln.err = l.next()
			select {
			case out <- ln:
			case <-stop:
				return
			}
			if ln.err != nil {
				return
			}
		}
	}()
	return out
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its line ending ("\n", "\r\n" or, at
// the end of the input, none) and its length in characters. A line longer
// than max bytes comes back as "" with long set. At the end of the input
// next returns io.EOF, and any other read error as it is.
func (l *lineReader) next() (line string, chars int, long bool, err error) {
	l.buf = l.buf[:0]
	size := 0
	var last [2]byte // the line's last two bytes
	for {
		chunk, rerr := l.r.ReadSlice('\n')
		size += len(chunk)
		for _, b := range chunk {
			if utf8.RuneStart(b) {
				chars++
			}
		}
		for _, b := range chunk[max(0, len(chunk)-2):] {
			last[0], last[1] = last[1], b
		}
		if len(l.buf)+len(chunk) <= l.max+2 {
			l.buf = append(l.buf, chunk...)
		}
		if rerr == bufio.ErrBufferFull {
			continue
		}
		if rerr != nil && (rerr != io.EOF || size == 0) {
			return "", 0, false, rerr
		}
		break
	}
	if last[1] == '\n' {
		size, chars, last[1] = size-1, chars-1, last[0]
	}
	if last[1] == '\r' {
		size, chars = size-1, chars-1
	}
	if size > l.max {
		return "", chars, true, nil
	}
	return string(l.buf[:size]), chars, false, nil
}
