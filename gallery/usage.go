package gallery

import (
	"net/http"
	"time"

	"github.com/easel-bot/easel/core/usage"
)

// usageView is the usage page: the report `easel usage` prints.
type usageView struct {
	Month   string // as asked, YYYY-MM
	Problem string // why the month could not be read
	Report  *usage.Report
}

// usage serves the usage report of a month (the query's month, YYYY-MM,
// else the current one, in UTC).
func (g *Gallery) usage(w http.ResponseWriter, r *http.Request) {
	now := g.now().UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	month := r.URL.Query().Get("month")
	if month != "" {
		m, err := time.Parse("2006-01", month)
		if err != nil || len(month) != len("2006-01") {
			g.render(w, r, http.StatusBadRequest, "usage.html", usageView{Problem: "write the month as YYYY-MM, such as " + now.Format("2006-01")})
			return
		}
		from = m
	}
	rep, err := usage.Build(r.Context(), g.store, g.cfg.Limits, g.cfg.Admins, usage.Filter{}, from, now)
	if err != nil {
		g.storeFailed(w, r, err)
		return
	}
	g.render(w, r, http.StatusOK, "usage.html", usageView{Month: rep.Month, Report: rep})
}
