package imagecheck

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/easel-bot/easel/core"
)

// ReadFile reads the local file at path as an input image, for the
// console: a file over lim.MaxBytes (DefaultMaxBytes when zero) is refused
// before it is read, and the bytes are checked as Check does. Every refusal
// is an Invalid *core.Error naming the file by its base name.
func ReadFile(path string, lim Limits) (core.Image, error) {
	name, limit := DisplayName(filepath.Base(path)), lim.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return core.Image{}, core.WrapError(core.Invalid, err, "there is no file %s", path)
	}
	if err != nil {
		return core.Image{}, core.WrapError(core.Invalid, err, "Easel can't read %s", path)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return core.Image{}, core.WrapError(core.Invalid, err, "Easel can't read %s", path)
	case !st.Mode().IsRegular():
		return core.Image{}, core.Errorf(core.Invalid, "%s is not a file: give the path of a PNG, JPEG or WebP image", path)
	case st.Size() > limit:
		return core.Image{}, tooLarge(name, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return core.Image{}, core.WrapError(core.Invalid, err, "Easel can't read %s", path)
	}
	if int64(len(data)) > limit {
		return core.Image{}, tooLarge(name, -1, limit)
	}
	lim.MaxBytes = limit
	return Check(name, data, lim)
}
