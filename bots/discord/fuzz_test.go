package discord

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

// interactionSeeds are INTERACTION_CREATE payloads as the gateway sends
// them: /imagine with every option and an attachment, in a guild and in a
// DM, a button press, /easel with its subcommand groups, autocompletes,
// and interactions Easel ignores.
var interactionSeeds = []string{
	`{"id":"1","application_id":"7","type":2,"guild_id":"100","channel_id":"200","token":"t",` +
		`"member":{"user":{"id":"300","username":"ana"},"nick":"Ana","roles":["900"],"permissions":"8"},` +
		`"data":{"id":"5","name":"imagine","type":1,"options":[` +
		`{"name":"prompt","type":3,"value":"  a red fox  "},{"name":"aspect","type":3,"value":"16:9"},` +
		`{"name":"quality","type":3,"value":"high"},{"name":"n","type":4,"value":3},{"name":"model","type":3,"value":"gpt-image-1"},` +
		`{"name":"image","type":11,"value":"42"}],` +
		`"resolved":{"attachments":{"42":{"id":"42","filename":"../../etc/passwd","size":1234,"url":"https://cdn.discordapp.com/attachments/1/42/passwd","content_type":"image/png"}}}}}`,
	`{"id":"2","type":2,"channel_id":"201","user":{"id":"301","username":"bob","global_name":"Bob"},` +
		`"data":{"id":"5","name":"imagine","type":1,"options":[{"name":"prompt","type":3,"value":"a cat --n 2"}]}}`,
	`{"id":"3","type":3,"guild_id":"100","channel_id":"202","member":{"user":{"id":"300"}},"message":{"id":"77","channel_id":"202"},` +
		`"data":{"custom_id":"easel:regenerate:S1:2","component_type":2}}`,
	`{"id":"4","type":3,"channel_id":"203","user":{"id":"301"},"data":{"custom_id":"easel:undo:S1:0","component_type":2}}`,
	`{"id":"5","type":2,"channel_id":"204","user":{"id":"301"},"data":{"id":"6","name":"other","type":1}}`,
	`{"id":"6","type":1}`,
	`{"id":"7","type":4,"channel_id":"205","user":{"id":"301"},"data":{"name":"imagine","options":[{"name":"prompt","type":3,"value":"a","focused":true}]}}`,
	`{"id":"8","type":5,"channel_id":"206","user":{"id":"301"},"data":{"custom_id":"m","components":[]}}`,
	`{"id":"9","type":2,"guild_id":"100","channel_id":"200","member":{"user":{"id":"300"},"permissions":"8"},` +
		`"data":{"id":"6","name":"easel","type":1,"options":[{"name":"style","type":2,"options":[{"name":"set","type":1,"options":[` +
		`{"name":"name","type":3,"value":"brand"},{"name":"definition","type":3,"value":"flat art --ar 16:9"},{"name":"reference","type":11,"value":"43"}]}]}],` +
		`"resolved":{"attachments":{"43":{"id":"43","filename":"logo.png","size":99,"url":"https://cdn.discordapp.com/attachments/1/43/logo.png"}}}}}`,
	`{"id":"10","type":4,"guild_id":"100","channel_id":"200","member":{"user":{"id":"300"}},` +
		`"data":{"id":"6","name":"easel","type":1,"options":[{"name":"channel","type":2,"options":[{"name":"set","type":1,"options":[` +
		`{"name":"quality","type":3,"value":"high"},{"name":"style","type":3,"value":"br","focused":true}]}]}]}}`,
	`{"id":"11","type":2,"guild_id":"100","channel_id":"200","data":{"name":"easel","options":[null,{"name":"style","type":2,"options":[null,{"type":1,"name":"list","options":[null]}]}]}}`,
}

// decodeInteraction decodes an INTERACTION_CREATE payload as discordgo's
// gateway does: a payload that fails to decode is dispatched all the same,
// as far as it got (with no Interaction at all for a null payload).
func decodeInteraction(payload []byte) *discordgo.Interaction {
	var ev discordgo.InteractionCreate
	_ = json.Unmarshal(payload, &ev)
	return ev.Interaction
}

// FuzzInteraction feeds INTERACTION_CREATE payloads, decoded as the gateway
// does, to what Easel reads from an interaction before any network call:
// whether it is /imagine or one of Easel's buttons, the prompt, the message
// text and the attachment of /imagine, the button's action, session and
// version, and the user. None may panic (a panic in a gateway handler
// takes the process down), and what they read must be consistent.
func FuzzInteraction(f *testing.F) {
	for _, s := range interactionSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ic := decodeInteraction(payload)
		(&Bot{}).onInteraction(context.Background(), ignorable(ic)) // must return before touching the bot
		if ic == nil {
			return
		}
		data, isCommand := commandData(ic)
		action, session, version, isPress := buttonPress(ic)
		if isCommand && isPress {
			t.Fatal("an interaction is both a command and a button press")
		}
		u := user(ic.User, ic.Member, []string{"900"})
		if ic.User != nil && u.ID != ic.User.ID || ic.User == nil && ic.Member != nil && ic.Member.User != nil && u.ID != ic.Member.User.ID {
			t.Fatalf("user %q is not the interaction's", u.ID)
		}
		if isCommand {
			prompt, text, image := commandText(data)
			if prompt != strings.TrimSpace(prompt) || !strings.HasPrefix(text, prompt) {
				t.Fatalf("prompt %q, text %q", prompt, text)
			}
			if image != nil && (data.Resolved == nil || !slices.Contains(mapValues(data.Resolved.Attachments), image)) {
				t.Fatal("the attachment is not one the interaction resolved")
			}
		}
		if data, ok := ic.Data.(discordgo.ApplicationCommandInteractionData); ok {
			in := invoked(data)
			if strings.Count(in.path, " ") > 1 {
				t.Fatalf("subcommand path %q is more than a group and a subcommand", in.path)
			}
			if f := in.focused(); f != nil && (!f.Focused || in.options[f.Name] != f) {
				t.Fatalf("focused option %+v is not the one focused", f)
			}
		}
		if isPress {
			if session == "" || version < 1 || !slices.ContainsFunc(core.Buttons, func(b core.Button) bool { return b.Action == action }) {
				t.Fatalf("press of %q on %q v%d", action, session, version)
			}
			if id := buttonID(action, session, version); id != ic.Data.(discordgo.MessageComponentInteractionData).CustomID {
				t.Fatalf("button id %q does not round-trip", id)
			}
		}
	})
}

// ignorable returns ic if onInteraction must ignore it without any call
// (so that a zero Bot can handle it), or nil, which it also ignores.
// Autocompletes are always answered.
func ignorable(ic *discordgo.Interaction) *discordgo.Interaction {
	if ic == nil || ic.Type == discordgo.InteractionApplicationCommandAutocomplete {
		return nil
	}
	_, isCommand := commandData(ic)
	_, isEasel := easelData(ic)
	_, _, _, isPress := buttonPress(ic)
	if isCommand || isEasel || isPress {
		return nil
	}
	return ic
}

func mapValues[K comparable, V any](m map[K]V) []V {
	var vs []V
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// TestUndecodableInteractionsAreIgnored replays the payloads that crashed
// the interaction handler (kept as FuzzInteraction's regression seeds) into
// onInteraction itself: a null payload, an /imagine or button whose data
// discordgo could not decode, and a null option.
func TestUndecodableInteractionsAreIgnored(t *testing.T) {
	crashers := map[string]string{
		"null":                 `null`,
		"not json":             `A`,
		"command without data": `{"tYpe":2}`,
		"press without data":   `{"type":3,"data":"x"}`,
		"command of bad data":  `{"type":2,"data":{"name":5}}`,
	}
	for name, payload := range crashers {
		t.Run(name, func(t *testing.T) {
			(&Bot{}).onInteraction(context.Background(), decodeInteraction([]byte(payload)))
		})
	}
	ic := decodeInteraction([]byte(`{"type":2,"data":{"name":"imagine","options":[null,{"name":"prompt","value":"a fox"}]}}`))
	data, ok := commandData(ic)
	if !ok {
		t.Fatal("an /imagine with a null option is not /imagine")
	}
	if prompt, _, _ := commandText(data); prompt != "a fox" {
		t.Errorf("prompt = %q", prompt)
	}
}
