package config

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// decode decodes the TOML document doc over cfg. It returns where doc
// defines each key, and the problems found, each naming its key and line;
// cfg is only usable if there are none.
//
// The document is first parsed on its own (go-toml's unstable parser) to
// index its keys: that finds syntax errors, and lets unknown keys and values
// of the wrong type be reported all at once, with messages in the file's
// terms. go-toml then decodes it strictly; its DecodeError positions locate
// what remains, such as invalid durations and repeated keys.
func decode(doc []byte, cfg *Config) (*keyIndex, []*Error) {
	doc = bytes.TrimPrefix(doc, []byte("\ufeff")) // as some Windows editors write
	keys, syntax := indexKeys(doc)
	if syntax != nil {
		return keys, []*Error{syntax}
	}
	if problems := keys.schemaProblems(); len(problems) > 0 {
		return keys, problems
	}
	defaults := cfg.OpenAI.Prices
	cfg.OpenAI.Prices = nil // so that an entry from the file starts empty
	if err := toml.NewDecoder(bytes.NewReader(doc)).DisallowUnknownFields().Decode(cfg); err != nil {
		return keys, keys.decodeProblems(err)
	}
	fromFile := cfg.OpenAI.Prices
	cfg.OpenAI.Prices = defaults
	maps.Copy(cfg.OpenAI.Prices, fromFile)
	return keys, keys.incompletePrices(fromFile)
}

// keyIndex records where a TOML document defines each key.
type keyIndex struct {
	defs  []keyDef       // in document order, repeated definitions included
	first map[string]int // formatKey of a path → index in defs of its first definition
}

// keyDef is one definition of a key: a key-value, a [table] or [[array
// table]] header, or a table implied by a dotted key.
type keyDef struct {
	path      []string
	line, col int             // of the key's first part, counted from 1
	kind      unstable.Kind   // of the value; Table for tables
	elems     []unstable.Kind // for an array, its elements' kinds
}

// indexKeys parses doc and records where it defines each key. On a syntax
// error it returns what it indexed before it, and the error, with the line
// and (when it can be read) the key being defined.
func indexKeys(doc []byte) (*keyIndex, *Error) {
	doc = doc[:len(doc):len(doc)] // so that offsets can be computed from capacities
	idx := &keyIndex{first: make(map[string]int)}
	var p unstable.Parser
	p.Reset(doc)
	var table []string // the current [table]
	lastLine := 0      // where the last complete expression ends
	for p.NextExpression() {
		expr := p.Expression()
		if expr.Kind == unstable.KeyValue {
			idx.addKeyValue(doc, table, expr)
			lastLine, _ = position(doc, int(expr.Raw.Offset+expr.Raw.Length))
			continue
		}
		var line, col int
		table, line, col = idx.addKey(doc, nil, expr.Key())
		idx.note(keyDef{path: table, line: line, col: col, kind: expr.Kind}, false)
		lastLine = line
	}
	err := p.Error()
	if err == nil {
		return idx, nil
	}
	syntax := &Error{Key: failedKey(doc, table, lastLine), Msg: "syntax error: " + err.Error()}
	var perr *unstable.ParserError
	if errors.As(err, &perr) {
		syntax.Line, _ = position(doc, cap(doc)-cap(perr.Highlight))
	}
	return idx, syntax
}

// addKeyValue records the key-value kv, found under the table prefix, and
// the keys of its value if that is an inline table.
func (idx *keyIndex) addKeyValue(doc []byte, prefix []string, kv *unstable.Node) {
	path, line, col := idx.addKey(doc, prefix, kv.Key())
	value := kv.Value()
	def := keyDef{path: path, line: line, col: col, kind: value.Kind}
	if value.Kind == unstable.Array {
		for it := value.Children(); it.Next(); {
			def.elems = append(def.elems, it.Node().Kind)
		}
	}
	idx.note(def, false)
	if value.Kind == unstable.InlineTable {
		for it := value.Children(); it.Next(); {
			idx.addKeyValue(doc, path, it.Node())
		}
	}
}

// addKey returns the path of the dotted key, found under prefix, with the
// position of its first part, after recording the tables its parts imply.
func (idx *keyIndex) addKey(doc []byte, prefix []string, key unstable.Iterator) (path []string, line, col int) {
	path = slices.Clip(prefix)
	for key.Next() {
		n := key.Node()
		if len(path) == len(prefix) {
			line, col = position(doc, int(n.Raw.Offset))
		} else {
			idx.note(keyDef{path: path, line: line, col: col, kind: unstable.Table}, true)
		}
		path = append(slices.Clip(path), string(n.Data))
	}
	return path, line, col
}

// note records def; if implied, only if its key has no definition yet.
func (idx *keyIndex) note(def keyDef, implied bool) {
	key := formatKey(def.path...)
	if _, ok := idx.first[key]; !ok {
		idx.first[key] = len(idx.defs)
	} else if implied {
		return
	}
	idx.defs = append(idx.defs, def)
}

// line returns the line where key (as formatKey writes it) is first
// defined, or 0 if it is not.
func (idx *keyIndex) line(key string) int {
	if i, ok := idx.first[key]; ok {
		return idx.defs[i].line
	}
	return 0
}

// position returns the line and column, counted from 1, of the byte at
// offset in doc (or of the end of doc, if offset is beyond it).
func position(doc []byte, offset int) (line, col int) {
	offset = min(max(offset, 0), len(doc))
	before := doc[:offset]
	return bytes.Count(before, []byte("\n")) + 1, offset - bytes.LastIndexByte(before, '\n')
}

// failedKey returns the key that the expression starting after line
// lastLine, under table, defines, if that can be read from its first line:
// it is where the parser met a syntax error.
func failedKey(doc []byte, table []string, lastLine int) string {
	lines := strings.Split(string(doc), "\n")
	for _, text := range lines[min(lastLine, len(lines)):] {
		text = strings.TrimSpace(text)
		if text == "" || text[0] == '#' {
			continue
		}
		// The key ends at one of the line's "=": find the first at which
		// "key = 0" parses.
		for i := range len(text) {
			if text[i] != '=' {
				continue
			}
			var p unstable.Parser
			p.Reset([]byte(text[:i+1] + " 0"))
			if p.NextExpression() && p.Expression().Kind == unstable.KeyValue {
				var path []string
				for it := p.Expression().Key(); it.Next(); {
					path = append(path, string(it.Node().Data))
				}
				return formatKey(append(slices.Clip(table), path...)...)
			}
		}
		return ""
	}
	return ""
}

// configType is the type that TOML documents decode into.
var configType = reflect.TypeFor[Config]()

// durationType is written as a string, although its kind is an integer.
var durationType = reflect.TypeFor[Duration]()

// shardsType is written as "auto" or an integer.
var shardsType = reflect.TypeFor[Shards]()

// schemaProblems reports, in document order, the keys that Config does not
// have and the values that are not of their field's type.
func (idx *keyIndex) schemaProblems() []*Error {
	var problems []*Error
	for _, def := range idx.defs {
		t := typeAt(def.path)
		if t == nil {
			// Only the first unknown part of a path is reported.
			if parent := typeAt(def.path[:len(def.path)-1]); parent != nil && parent.Kind() == reflect.Struct {
				problems = append(problems, &Error{Line: def.line, Key: formatKey(def.path...), Msg: unknownKey(def, parent)})
			}
			continue
		}
		if !def.fits(t) {
			problems = append(problems, &Error{Line: def.line, Key: formatKey(def.path...), Msg: "must be " + describeType(t) + ", got " + def.describe()})
		}
	}
	return problems
}

// typeAt returns the type of the Config field that path leads to, or nil if
// there is none. Any name leads into a map.
func typeAt(path []string) reflect.Type {
	t := configType
	for _, name := range path {
		switch t.Kind() {
		case reflect.Struct:
			if t = fieldType(t, name); t == nil {
				return nil
			}
		case reflect.Map:
			t = t.Elem()
		default:
			return nil
		}
	}
	return t
}

// fieldType returns the type of the field of struct type t whose TOML key is
// key, or nil if there is none.
func fieldType(t reflect.Type, key string) reflect.Type {
	for f := range t.Fields() {
		if tomlKey(f) == key {
			return f.Type
		}
	}
	return nil
}

// tomlKey returns the TOML key of a struct field of Config, or "-" if it
// has none.
func tomlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return key
}

// fits reports whether def's value can be decoded into type t.
func (def keyDef) fits(t reflect.Type) bool {
	if t.Kind() != reflect.Slice {
		return kindFits(def.kind, t)
	}
	if def.kind != unstable.Array {
		return false
	}
	for _, k := range def.elems {
		if !kindFits(k, t.Elem()) {
			return false
		}
	}
	return true
}

// kindFits reports whether a TOML value of kind k can be decoded into type t,
// which is not a slice.
func kindFits(k unstable.Kind, t reflect.Type) bool {
	if t == durationType {
		return k == unstable.String
	}
	if t == shardsType {
		return k == unstable.String || k == unstable.Integer
	}
	switch t.Kind() {
	case reflect.String:
		return k == unstable.String
	case reflect.Int:
		return k == unstable.Integer
	case reflect.Float64:
		return k == unstable.Integer || k == unstable.Float
	case reflect.Bool:
		return k == unstable.Bool
	case reflect.Struct, reflect.Map:
		return k == unstable.Table || k == unstable.InlineTable
	default:
		return false
	}
}

// describeType says how a value of type t is written.
func describeType(t reflect.Type) string {
	if t == durationType {
		return `a duration string such as "30s" or "5m"`
	}
	if t == shardsType {
		return `"auto" or a number of shards`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "an "), "a ") + "s"
	default:
		return "a table"
	}
}

// describe says what kind of value def has, such as "a string" or "an array
// of integers".
func (def keyDef) describe() string {
	switch {
	case def.kind != unstable.Array:
		return describeKind(def.kind)
	case len(def.elems) == 0:
		return "an empty array"
	}
	for _, k := range def.elems[1:] {
		if k != def.elems[0] {
			return "an array of mixed types"
		}
	}
	return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeKind(def.elems[0]), "an "), "a ") + "s"
}

// describeKind names a kind of TOML value, with its article.
func describeKind(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.Table, unstable.InlineTable:
		return "a table"
	case unstable.ArrayTable:
		return "an array of tables"
	default:
		return "a date or time value"
	}
}

// secretKeys maps the keys people try for secrets to the environment
// variables that hold them.
var secretKeys = map[string]string{
	"secrets":              envOpenAIKey + ", " + envSlackBotToken + ", " + envSlackAppToken + ", " + envSlackSigningSecret + " or " + envDiscordBotToken,
	"openai.api_key":       envOpenAIKey,
	"slack.bot_token":      envSlackBotToken,
	"slack.app_token":      envSlackAppToken,
	"slack.signing_secret": envSlackSigningSecret,
	"slack.client_id":      envSlackClientID,
	"slack.client_secret":  envSlackClientSecret,
	"slack.token_key":      envTokenKey,
	"discord.bot_token":    envDiscordBotToken,
	"discord.token":        envDiscordBotToken,
}

// unknownKey explains that def's key is unknown in the struct type parent:
// pointing to the environment for a secret, or suggesting a known key with a
// similar name.
func unknownKey(def keyDef, parent reflect.Type) string {
	msg := "unknown key"
	if def.kind == unstable.Table || def.kind == unstable.ArrayTable {
		msg = "unknown table"
	}
	if env, ok := secretKeys[formatKey(def.path...)]; ok {
		return msg + "; secrets are read from the environment only: set " + env
	}
	name := strings.ToLower(def.path[len(def.path)-1])
	best, bestDist := "", len(name)/2+1 // suggest nothing further away than this
	for f := range parent.Fields() {
		if key := tomlKey(f); key != "-" {
			if d := editDistance(name, key); d < bestDist && d <= 2 {
				best, bestDist = key, d
			}
		}
	}
	if best == "" {
		return msg
	}
	return msg + "; did you mean " + formatKey(append(slices.Clip(def.path[:len(def.path)-1]), best)...) + "?"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := range len(a) {
		cur[0] = i + 1
		for j := range len(b) {
			cost := 1
			if a[i] == b[j] {
				cost = 0
			}
			cur[j+1] = min(prev[j+1]+1, cur[j]+1, prev[j]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeProblems turns an error from go-toml's decoder into problems, each
// with its line and its full key.
func (idx *keyIndex) decodeProblems(err error) []*Error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		problems := make([]*Error, len(strict.Errors))
		for i := range strict.Errors {
			problems[i] = idx.decodeProblem(&strict.Errors[i])
		}
		return problems
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		return []*Error{idx.decodeProblem(de)}
	}
	return []*Error{{Msg: err.Error()}}
}

// decodeProblem turns one DecodeError into a problem.
func (idx *keyIndex) decodeProblem(de *toml.DecodeError) *Error {
	line, col := de.Position()
	return &Error{
		Line: line,
		Key:  idx.keyAt(line, col, de.Key()),
		Msg:  strings.TrimPrefix(de.Error(), "toml: "),
	}
}

// keyAt returns the full key of an error at line and col about key, which
// go-toml sometimes gives without some of its tables: the last key defined
// on that line before col that ends with the same part.
func (idx *keyIndex) keyAt(line, col int, key []string) string {
	full, fullCol := key, 0
	for _, def := range idx.defs {
		if def.line == line && def.col <= col && def.col > fullCol &&
			len(key) > 0 && def.path[len(def.path)-1] == key[len(key)-1] {
			full, fullCol = def.path, def.col
		}
	}
	return formatKey(full...)
}

// incompletePrices reports the entries of prices that the document defines
// without all of their fields: a missing price would silently count as 0.
func (idx *keyIndex) incompletePrices(prices map[string]Price) []*Error {
	var fields []string
	for f := range reflect.TypeFor[Price]().Fields() {
		fields = append(fields, tomlKey(f))
	}
	var problems []*Error
	for _, model := range slices.Sorted(maps.Keys(prices)) {
		var missing []string
		for _, f := range fields {
			if idx.line(formatKey("openai", "prices", model, f)) == 0 {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			key := formatKey("openai", "prices", model)
			problems = append(problems, &Error{
				Line: idx.line(key),
				Key:  key,
				Msg:  "missing " + strings.Join(missing, ", ") + ": a price gives text_input, image_input and output (US dollars per million tokens)",
			})
		}
	}
	return problems
}
