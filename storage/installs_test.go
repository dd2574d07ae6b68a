package storage

import (
	"context"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/install"
)

func TestInstallationsListsEveryOne(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir(), Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if recs, err := db.Installations(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("Installations of a new store = %v, %v", recs, err)
	}
	for _, rec := range []install.Record{
		{Team: "T2", BotUser: "U2", Token: []byte("sealed-2")},
		{Enterprise: "E1", EnterpriseInstall: true, BotUser: "U1", Token: []byte("sealed-1")},
	} {
		if err := db.SaveInstallation(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := db.Installations(ctx)
	if err != nil || len(recs) != 2 || recs[0].Key() != "enterprise:E1" || recs[1].Key() != "team:T2" || string(recs[1].Token) != "sealed-2" {
		t.Errorf("Installations = %+v, %v", recs, err)
	}
}
