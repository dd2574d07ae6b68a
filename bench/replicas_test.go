package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// backend opens the replicas' stores: on bbolt one (a single process), on
// PostgreSQL n, each with its own connections and limits, as n processes
// would have, all counting their round trips in trips.
type backend struct {
	name     string
	replicas int
}

var backends = []backend{{"bbolt", 1}, {"postgres-1", 1}, {"postgres-3", 3}}

// node is one replica of a benchmark: its store and engine.
type node struct {
	store interface {
		core.SessionStore
		Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (bool, error)
		Handled(ctx context.Context, key string) error
		Unhandled(ctx context.Context) ([]core.Delivery, error)
	}
	engine *core.Engine
}

// nodes starts be's replicas with engine config cfg and an instant
// provider, and returns them with the counter of PostgreSQL round trips.
func nodes(tb testing.TB, be backend, cfg core.EngineConfig) ([]*node, *atomic.Int64) {
	tb.Helper()
	ctx := context.Background()
	trips := &atomic.Int64{}
	images := coretest.ImageDir(tb, "")
	cfg.DefaultProvider = "fake"
	cfg.Limits = core.Limits{MaxN: 4, MaxPromptChars: 1000}
	var out []*node
	var url string
	if be.name != "bbolt" {
		url = pgtest.Start(tb).DB(tb)
	}
	for range be.replicas {
		n := &node{}
		c := cfg
		if url == "" {
			db, err := storage.Open(ctx, tb.TempDir(), storage.Options{Timeout: time.Second})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = db.Close() })
			n.store = db
		} else {
			db, err := postgres.Open(ctx, url, postgres.Options{Tracer: tripCounter{trips}})
			if err != nil {
				tb.Fatal(err)
			}
			limits, err := db.NewLimits(ctx, max(cfg.MaxConcurrent, 1), postgres.DefaultLease)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { limits.Close(); _ = db.Close() })
			n.store, c.Limiters = db, limits.Limiters()
		}
		engine, err := core.NewEngine(c, n.store, images, map[string]core.Generator{"fake": &coretest.Generator{}}, slog.New(slog.DiscardHandler))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = engine.Close(cctx)
		})
		n.engine = engine
		out = append(out, n)
	}
	return out, trips
}

// tripCounter counts the statements and batches sent: each is one round
// trip to the server.
type tripCounter struct{ n *atomic.Int64 }

func (c tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// BenchmarkReplicaTurns measures turns per second with a provider that
// answers at once, on bbolt and on PostgreSQL with 1 and 3 replicas: 40
// sessions of 3 turns each (a prompt and two refinements, queued at once),
// the sessions spread over the replicas; and the PostgreSQL round trips
// per turn, from recording it to posting its result.
//
//	go test ./bench/ -run '^$' -bench ReplicaTurns -benchtime 3x -count 3
func BenchmarkReplicaTurns(b *testing.B) {
	const sessions, perSession = 40, 3
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			rs, trips := nodes(b, be, core.EngineConfig{MaxConcurrent: 64, MaxPerUser: 1000, MaxQueue: 10})
			ctx := context.Background()
			var turns, elapsed, sent int64
			round := 0
			for b.Loop() {
				round++
				threads := make([]*coretest.Thread, sessions)
				before := trips.Load()
				start := time.Now()
				var wg sync.WaitGroup
				for s := range sessions {
					threads[s] = coretest.NewThread()
					r := rs[s%len(rs)]
					wg.Go(func() {
						for i := range perSession {
							msg := core.Message{Platform: "chat", Workspace: "W", Thread: fmt.Sprintf("r%d-s%d", round, s),
								User: core.User{ID: fmt.Sprintf("U%d", s%7)}, Text: fmt.Sprintf("a fox, take %d", i)}
							if _, err := r.engine.Handle(ctx, threads[s], msg); err != nil {
								b.Error(err)
							}
						}
					})
				}
				wg.Wait()
				for _, th := range threads {
					th.WaitTurns(b, perSession)
				}
				elapsed += int64(time.Since(start))
				turns += sessions * perSession
				sent += trips.Load() - before
			}
			b.ReportMetric(float64(turns)/time.Duration(elapsed).Seconds(), "turns/s")
			if be.name != "bbolt" {
				b.ReportMetric(float64(sent)/float64(turns), "round-trips/turn")
			}
		})
	}
}

// BenchmarkReplicaAck measures the ack latency of 200 slash commands sent
// at once over Socket Mode to one Slack adapter, each recorded in the
// durable inbox before its ack, on bbolt and on PostgreSQL.
//
//	go test ./bench/ -run '^$' -bench ReplicaAck -benchtime 3x -count 3
func BenchmarkReplicaAck(b *testing.B) {
	for _, be := range backends[:2] {
		b.Run(be.name, func(b *testing.B) {
			rs, _ := nodes(b, be, core.EngineConfig{MaxConcurrent: 8, MaxPerUser: 1000, MaxQueue: 1000})
			fake := slacktest.NewServer(b)
			fake.WaitTimeout = 2 * time.Minute
			bot, err := slack.New(slack.Config{BotToken: fake.BotToken, AppToken: fake.AppToken, APIURL: fake.APIURL()},
				rs[0].engine, rs[0].store, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- bot.Run(ctx) }()
			b.Cleanup(func() { cancel(); <-done })
			fake.Connected(b)
			var all []time.Duration
			sent := 0
			for b.Loop() {
				ids := make([]string, 200)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range ids {
					env := fake.SlashCommand(fmt.Sprintf("UACK%03d", i), "C1", fmt.Sprintf("ack test %d-%d", sent, i))
					wg.Go(func() { <-start; ids[i] = fake.Send(b, env) })
				}
				close(start)
				wg.Wait()
				for _, id := range ids {
					all = append(all, fake.WaitAck(b, id).Latency)
				}
				sent += len(ids)
				fake.WaitFor(b, "every image posted", func() bool { return completed(fake) >= sent })
			}
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)].Microseconds())/1000, "p99-ms")
		})
	}
}

// completed counts the images shared in threads.
func completed(fake *slacktest.Server) int {
	n := 0
	for _, u := range fake.Uploads() {
		if u.Completed && u.ThreadTS != "" {
			n++
		}
	}
	return n
}
