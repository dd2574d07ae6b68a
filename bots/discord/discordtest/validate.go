package discordtest

import (
	"net/http"
	"regexp"
	"unicode/utf8"
)

// Discord's limits on messages (MessageCreateRequest and the component
// schemas of the API description, with the 2,000-character content limit
// Discord applies to bots).
const (
	maxContent       = 2000
	maxRows          = 5
	maxRowButtons    = 5
	maxLabel         = 80
	maxCustomID      = 100
	maxFiles         = 10
	maxThreadName    = 100
	maxCommandDesc   = 100
	maxCommandOpts   = 25
	maxOptionChoices = 25
)

// invalidForm is Discord's 50035 "Invalid Form Body" error naming a field.
func invalidForm(field, problem string) *apiError {
	return errorf(http.StatusBadRequest, 50035, "Invalid Form Body: %s: %s", field, problem)
}

// checkMessage checks a message payload and its files against Discord's
// limits. creating requires something to show; flags lists the message
// flags the endpoint accepts.
func checkMessage(p messagePayload, files []File, creating bool, limit int64, flags int) *apiError {
	if p.Content != nil && utf8.RuneCountInString(*p.Content) > maxContent {
		return invalidForm("content", "Must be 2000 or fewer in length.")
	}
	if p.Flags&^flags != 0 {
		return invalidForm("flags", "Invalid flags")
	}
	if err := p.AllowedMentions.check(); err != nil {
		return err
	}
	if p.Components != nil {
		if err := checkComponents(*p.Components); err != nil {
			return err
		}
	}
	if len(files) > maxFiles {
		return invalidForm("files", "Must be 10 or fewer in length.")
	}
	var size int64
	for _, f := range files {
		size += int64(len(f.Data))
	}
	if size > limit {
		return errorf(http.StatusRequestEntityTooLarge, 40005, "Request entity too large")
	}
	empty := (p.Content == nil || *p.Content == "") && len(files) == 0 && len(p.Embeds) == 0 &&
		len(p.StickerIDs) == 0 && (p.Components == nil || len(*p.Components) == 0)
	if creating && empty {
		return errorf(http.StatusBadRequest, 50006, "Cannot send an empty message")
	}
	return nil
}

// checkComponents checks action rows of buttons, or of one string select.
func checkComponents(rows []Component) *apiError {
	if len(rows) > maxRows {
		return invalidForm("components", "Must be 5 or fewer in length.")
	}
	ids := map[string]bool{}
	for _, row := range rows {
		if row.Type != 1 {
			return invalidForm("components", "top-level components must be action rows (type 1)")
		}
		if len(row.Components) == 1 && row.Components[0].Type == 3 {
			if err := checkSelect(row.Components[0], ids); err != nil {
				return err
			}
			continue
		}
		if len(row.Components) == 0 || len(row.Components) > maxRowButtons {
			return invalidForm("components.components", "an action row holds 1 to 5 buttons")
		}
		for _, b := range row.Components {
			if b.Type == 3 {
				return invalidForm("components.components", "a select menu must be alone in its action row")
			}
			if err := checkButton(b, ids); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSelect checks a string select (component type 3): a custom_id of 1
// to 100 characters, at most 150 of placeholder, 1 to 25 options with a
// label and a value of 1 to 100 characters each, distinct values, and
// min_values and max_values within 0 to 25, min at most max.
func checkSelect(c Component, ids map[string]bool) *apiError {
	const at = "components.components"
	switch {
	case c.CustomID == "" || len(c.CustomID) > maxCustomID:
		return invalidForm(at+".custom_id", "Must be between 1 and 100 in length.")
	case ids[c.CustomID]:
		return invalidForm(at+".custom_id", "Component custom id cannot be duplicated")
	case utf8.RuneCountInString(c.Placeholder) > 150:
		return invalidForm(at+".placeholder", "Must be 150 or fewer in length.")
	case len(c.Options) < 1 || len(c.Options) > 25:
		return invalidForm(at+".options", "Must be between 1 and 25 in length.")
	}
	lo, hi := 1, 1
	if c.MinValues != nil {
		lo = *c.MinValues
	}
	if c.MaxValues != nil {
		hi = *c.MaxValues
	}
	if lo < 0 || lo > 25 || hi < 1 || hi > 25 || lo > hi || hi > len(c.Options) {
		return invalidForm(at+".max_values", "min_values and max_values must be within 0 to 25, min at most max, max at most the options")
	}
	values := map[string]bool{}
	for _, o := range c.Options {
		switch {
		case o.Label == "" || utf8.RuneCountInString(o.Label) > 100:
			return invalidForm(at+".options.label", "Must be between 1 and 100 in length.")
		case o.Value == "" || utf8.RuneCountInString(o.Value) > 100:
			return invalidForm(at+".options.value", "Must be between 1 and 100 in length.")
		case utf8.RuneCountInString(o.Description) > 100:
			return invalidForm(at+".options.description", "Must be 100 or fewer in length.")
		case values[o.Value]:
			return invalidForm(at+".options.value", "Select option values must be unique")
		}
		values[o.Value] = true
	}
	ids[c.CustomID] = true
	return nil
}

func checkButton(b Component, ids map[string]bool) *apiError {
	switch {
	case b.Type != 2:
		return invalidForm("components.components.type", "the fake supports buttons (type 2) only")
	case b.Style < 1 || b.Style > 6:
		return invalidForm("components.components.style", "Value must be one of {1, 2, 3, 4, 5, 6}.")
	case utf8.RuneCountInString(b.Label) > maxLabel:
		return invalidForm("components.components.label", "Must be 80 or fewer in length.")
	case b.Style == 5 && (b.URL == "" || b.CustomID != ""):
		return invalidForm("components.components.url", "link buttons need a url and no custom_id")
	case b.Style != 5 && (b.CustomID == "" || len(b.CustomID) > maxCustomID):
		return invalidForm("components.components.custom_id", "Must be between 1 and 100 in length.")
	case b.CustomID != "" && ids[b.CustomID]:
		return invalidForm("components.components.custom_id", "Component custom id cannot be duplicated")
	}
	ids[b.CustomID] = true
	return nil
}

// commandName is the pattern of command and option names
// (ApplicationCommandCreateRequest).
var commandName = regexp.MustCompile(`^[-_\p{Ll}\p{Lo}\p{N}]{1,32}$`)

// Option types, as in ApplicationCommandOptionType.
const (
	optionSubcommand      = 1
	optionSubcommandGroup = 2
	optionString          = 3
	optionInteger         = 4
	optionNumber          = 10
	optionAttachment      = 11
)

// maxOptionLength is the most characters a string option takes, and the
// bounds of its min_length and max_length.
const maxOptionLength = 6000

// checkCommand checks an application command against
// ApplicationCommandCreateRequest and the option schemas.
func checkCommand(c Command) *apiError {
	if !commandName.MatchString(c.Name) {
		return invalidForm("name", "Command name is invalid")
	}
	if c.Type == 0 || c.Type == 1 {
		if n := utf8.RuneCountInString(c.Description); n < 1 || n > maxCommandDesc {
			return invalidForm("description", "Must be between 1 and 100 in length.")
		}
	}
	return checkOptions(c.Options, inCommand, "options")
}

// Where options are: a command's, a subcommand group's or a subcommand's.
const (
	inCommand = iota
	inGroup
	inSubcommand
)

// checkOptions checks the options of a command, a subcommand group or a
// subcommand (where): a command's options are subcommands and groups, or
// value options, not both; a group holds subcommands only, and a
// subcommand value options only.
func checkOptions(opts []CommandOption, where int, at string) *apiError {
	if len(opts) > maxCommandOpts {
		return invalidForm(at, "Must be 25 or fewer in length.")
	}
	optional, names, subs := false, map[string]bool{}, 0
	for _, o := range opts {
		switch {
		case !commandName.MatchString(o.Name):
			return invalidForm(at+".name", "Command name is invalid")
		case names[o.Name]:
			return invalidForm(at+".name", "Option names must be unique")
		case o.Type < 1 || o.Type > 11:
			return invalidForm(at+".type", "Value must be one of {1, …, 11}.")
		case utf8.RuneCountInString(o.Description) < 1 || utf8.RuneCountInString(o.Description) > maxCommandDesc:
			return invalidForm(at+".description", "Must be between 1 and 100 in length.")
		}
		names[o.Name] = true
		switch o.Type {
		case optionSubcommandGroup:
			if where != inCommand {
				return invalidForm(at+".type", "a subcommand group can only be a command's option")
			}
			if len(o.Options) == 0 {
				return invalidForm(at+".options", "a subcommand group needs at least one subcommand")
			}
			if err := checkOptions(o.Options, inGroup, at+".options"); err != nil {
				return err
			}
			subs++
			continue
		case optionSubcommand:
			if where == inSubcommand {
				return invalidForm(at+".type", "a subcommand cannot hold subcommands")
			}
			if err := checkOptions(o.Options, inSubcommand, at+".options"); err != nil {
				return err
			}
			subs++
			continue
		}
		if where == inGroup {
			return invalidForm(at+".type", "a subcommand group holds subcommands only")
		}
		if err := checkValueOption(o, at); err != nil {
			return err
		}
		if o.Required && optional {
			return invalidForm(at, "Required options must be placed before non-required options")
		}
		optional = optional || !o.Required
	}
	if subs > 0 && subs != len(opts) {
		return invalidForm(at, "Subcommands and subcommand groups cannot be mixed with other options")
	}
	return nil
}

// checkValueOption checks a value option's choices, autocomplete and
// length bounds.
func checkValueOption(o CommandOption, at string) *apiError {
	numeric := o.Type == optionInteger || o.Type == optionNumber
	switch {
	case len(o.Options) > 0:
		return invalidForm(at+".options", "only subcommands and groups hold options")
	case len(o.Choices) > maxOptionChoices:
		return invalidForm(at+".choices", "Must be 25 or fewer in length.")
	case o.Autocomplete && o.Type != optionString && !numeric:
		return invalidForm(at+".autocomplete", "Autocomplete is only for string, integer and number options")
	case o.Autocomplete && len(o.Choices) > 0:
		return invalidForm(at+".autocomplete", "Autocomplete and choices are mutually exclusive")
	case (o.MinLength != nil || o.MaxLength != nil) && o.Type != optionString:
		return invalidForm(at+".max_length", "Lengths are for string options only")
	case o.MinLength != nil && (*o.MinLength < 0 || *o.MinLength > maxOptionLength):
		return invalidForm(at+".min_length", "Must be between 0 and 6000.")
	case o.MaxLength != nil && (*o.MaxLength < 1 || *o.MaxLength > maxOptionLength):
		return invalidForm(at+".max_length", "Must be between 1 and 6000.")
	}
	for _, c := range o.Choices {
		if n := utf8.RuneCountInString(c.Name); n < 1 || n > maxChoiceName {
			return invalidForm(at+".choices.name", "Must be between 1 and 100 in length.")
		}
		if err := checkChoiceValue(o.Type, c.Value, at+".choices.value"); err != nil {
			return err
		}
	}
	return nil
}

// maxChoiceName and maxChoiceValue bound a choice's name and a string
// choice's value.
const (
	maxChoiceName  = 100
	maxChoiceValue = 100
)

// checkChoiceValue checks that a choice's value suits an option of type
// typ: a string of at most 100 characters, or a number.
func checkChoiceValue(typ int, v any, at string) *apiError {
	switch typ {
	case optionString:
		s, ok := v.(string)
		if !ok || utf8.RuneCountInString(s) > maxChoiceValue {
			return invalidForm(at, "a string option's choice is a string of at most 100 characters")
		}
	case optionInteger, optionNumber:
		if _, ok := v.(float64); !ok {
			return invalidForm(at, "a numeric option's choice is a number")
		}
	default:
		return invalidForm(at, "only string, integer and number options have choices")
	}
	return nil
}
