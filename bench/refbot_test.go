package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
)

// refConfig is where the reference bot connects.
type refConfig struct {
	BotToken, AppToken, SlackURL, OpenAIURL string
}

// runRefBot runs the reference bot: the floor Easel is measured against.
// It makes the same round trip as Easel with none of its guarantees: it
// acknowledges a slash command at once over Socket Mode, posts the
// thread's root message, asks the OpenAI Images API for the image (plain
// net/http, encoding/json and base64, as a small bot would), uploads it into
// the thread (files.getUploadURLExternal, the upload,
// files.completeUploadExternal) and posts a Regenerate button. Nothing is
// recorded anywhere: a crash loses whatever was in flight. Its HTTP
// connections are pooled as generously as Easel's, so that the floor is
// not held back by connection setup. It returns a function that waits for
// the work in flight once ctx has ended.
func runRefBot(t testing.TB, ctx context.Context, cfg refConfig) (wait func()) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	client := &http.Client{Timeout: 2 * time.Minute, Transport: tr}
	api := slackapi.New(cfg.BotToken, slackapi.OptionAPIURL(cfg.SlackURL), slackapi.OptionAppLevelToken(cfg.AppToken),
		slackapi.OptionHTTPClient(client))
	sm := socketmode.New(api)
	var wg sync.WaitGroup
	wg.Go(func() { _ = sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Type != socketmode.EventTypeSlashCommand {
					continue
				}
				cmd, ok := evt.Data.(slackapi.SlashCommand)
				if !ok {
					continue
				}
				sm.Ack(*evt.Request)
				wg.Go(func() {
					if err := refHandle(ctx, api, client, cfg.OpenAIURL, cmd); err != nil && ctx.Err() == nil {
						t.Errorf("reference bot: %v", err)
					}
				})
			}
		}
	})
	return wg.Wait
}

// refHandle makes one image for cmd.
func refHandle(ctx context.Context, api *slackapi.Client, client *http.Client, openaiURL string, cmd slackapi.SlashCommand) error {
	_, root, err := api.PostMessageContext(ctx, cmd.ChannelID, slackapi.MsgOptionText("<@"+cmd.UserID+">: "+cmd.Text, false))
	if err != nil {
		return err
	}
	img, err := refGenerate(ctx, client, openaiURL, cmd.Text)
	if err != nil {
		return err
	}
	_, err = api.UploadFileContext(ctx, slackapi.UploadFileParameters{
		Reader: bytes.NewReader(img), FileSize: len(img), Filename: "image.png", Title: "image",
		InitialComment: cmd.Text, Channel: cmd.ChannelID, ThreadTimestamp: root,
	})
	if err != nil {
		return err
	}
	button := slackapi.NewButtonBlockElement("regenerate", "regenerate", slackapi.NewTextBlockObject(slackapi.PlainTextType, "Regenerate", false, false))
	_, _, err = api.PostMessageContext(ctx, cmd.ChannelID, slackapi.MsgOptionTS(root),
		slackapi.MsgOptionText("reply to refine it", false),
		slackapi.MsgOptionBlocks(slackapi.NewActionBlock("actions", button)))
	return err
}

// refGenerate asks the Images API for one image of prompt.
func refGenerate(ctx context.Context, client *http.Client, baseURL, prompt string) ([]byte, error) {
	body, _ := json.Marshal(map[string]any{"model": "gpt-image-1", "prompt": prompt, "n": 1, "size": "1024x1024"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/images/generations", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-bench")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("images: %s", resp.Status)
	}
	var answer struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return nil, err
	}
	if len(answer.Data) == 0 {
		return nil, fmt.Errorf("images: no image")
	}
	return base64.StdEncoding.DecodeString(answer.Data[0].B64JSON)
}

// runEaselChild runs Easel as cmd/easel wires it for Slack in Socket Mode
// (default Slack and OpenAI settings, the bbolt store and image directory
// in the data dir), with its concurrency cap raised so that it never
// throttles. It returns a function that stops it and one that counts the
// store's commits.
func runEaselChild(t testing.TB, ctx context.Context, env func(string) string) (stop func(), commits func() uint64) {
	dir := env("DIR")
	log := slog.New(slog.DiscardHandler)
	if env("DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	db, err := storage.Open(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	images, err := imagedir.Open(dir+"/images", nil)
	if err != nil {
		t.Fatal(err)
	}
	ocfg := openai.DefaultConfig()
	ocfg.APIKey, ocfg.BaseURL = "sk-bench", env("OPENAI")
	if stream, _ := strconv.ParseBool(env("STREAM")); !stream {
		ocfg.Stream, ocfg.PartialImages = false, 0
	}
	ocfg.Logger = log
	gen, err := openai.New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := core.EngineConfig{MaxConcurrent: 1000, DefaultProvider: "openai",
		Limits: core.Limits{MaxN: 4, MaxPromptChars: 4000}}
	eng, err := core.NewEngine(ecfg, db, images, map[string]core.Generator{"openai": gen}, log)
	if err != nil {
		t.Fatal(err)
	}
	bot, err := slack.New(slack.Config{BotToken: env("BOT"), AppToken: env("APP"), APIURL: env("SLACK")}, eng, db, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	stop = func() {
		if err := <-done; err != nil {
			t.Errorf("slack Run: %v", err)
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Close(cctx)
		_ = db.Close()
	}
	commits = func() uint64 {
		n, err := db.Commits(context.Background())
		if err != nil {
			t.Errorf("commits: %v", err)
		}
		return n
	}
	return stop, commits
}
