package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Every incremental list (the audit trail, a member's access log, webhook
// deliveries) read with order=commit is a feed: a poller following its
// cursor while writers commit rows in deliberately long, overlapping
// transactions (some rolled back) sees every committed row exactly once.
func TestFeedsNeverSkipOrRepeatACommittedRow(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	f := a.fixtures()
	id := a.publishContract(f, contractBody(f))
	a.enrol(f.member)
	a.joinContract(f.member, id)
	insertAccess := `INSERT INTO access_log (member_id, accessor_role, accessor_id, accessor_name, purpose, categories, request_id, at)
		VALUES ('alice', 'admin', 'root', 'Root', NULL, '{}', 'feed-test', clock_timestamp()) RETURNING id::text`
	insertEvent := `INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
		VALUES (gen_random_uuid(), '` + f.partnerCo + `', 'exchange.joined', '{}', clock_timestamp(), clock_timestamp() + interval '1 day') RETURNING id::text`
	feeds := []struct {
		path, token, insert, table string
	}{
		{"/v1/audit?order=commit", f.admin, insertAccess, "access_log"},
		{"/v1/me/access-log?order=commit", f.member, insertAccess, "access_log WHERE member_id = 'alice'"},
		{"/v1/audit/webhook-deliveries?order=commit", f.admin, insertEvent, "webhook_outbox"},
	}
	for _, feed := range feeds {
		t.Run(feed.path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			sqlDB := a.svc.sqlDB()
			var wg sync.WaitGroup
			for w := 0; w < 6; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(w)))
					for ctx.Err() == nil {
						tx, err := sqlDB.BeginTx(context.Background(), nil)
						if err != nil {
							return
						}
						for n := rng.Intn(3) + 1; n > 0; n-- {
							var id string
							if err := tx.QueryRow(feed.insert).Scan(&id); err != nil {
								_ = tx.Rollback()
								return
							}
						}
						// A long transaction: its rows' times are long past when it commits.
						time.Sleep(time.Duration(rng.Intn(150)) * time.Millisecond)
						if rng.Intn(5) == 0 {
							_ = tx.Rollback()
						} else {
							_ = tx.Commit()
						}
					}
				}(w)
			}
			// Partner reads write access rows through the API as well.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					hr := httptest.NewRequest("GET", "http://quid.test/v1/partner/members/alice/data?purpose=loyalty.personalised_offers", nil)
					hr.Header.Set("Authorization", "Bearer "+f.partner)
					if res, err := a.svc.app.Test(hr, -1); err == nil {
						res.Body.Close()
					}
				}
			}()

			seen := map[string]int{}
			cursor := ""
			poll := func() int {
				path := feed.path + "&limit=7"
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				hr := httptest.NewRequest("GET", "http://quid.test"+path, nil)
				hr.Header.Set("Authorization", "Bearer "+feed.token)
				res, err := a.svc.app.Test(hr, -1)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("%s → %d: %s", path, res.StatusCode, b)
				}
				var page struct {
					Items []struct {
						ID string `json:"id"`
					} `json:"items"`
					NextCursor string `json:"next_cursor"`
				}
				if err := json.Unmarshal(b, &page); err != nil {
					t.Fatal(err)
				}
				if page.NextCursor == "" {
					t.Fatalf("a feed page without next_cursor: %s", b)
				}
				cursor = page.NextCursor
				for _, it := range page.Items {
					seen[it.ID]++
				}
				return len(page.Items)
			}
			for ctx.Err() == nil {
				poll()
			}
			wg.Wait()
			var committed []string
			rows, err := sqlDB.Query("SELECT id::text FROM " + feed.table)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				committed = append(committed, id)
			}
			rows.Close()
			// Rows are handed out once every older transaction has finished,
			// anywhere in the cluster (parallel tests hold some open): drain
			// until the poller has caught up or a generous bound passes.
			for deadline := time.Now().Add(15 * time.Second); len(seen) < len(committed) && time.Now().Before(deadline); {
				if poll() == 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			poll()
			missed := 0
			for _, id := range committed {
				if seen[id] == 0 {
					missed++
				}
			}
			dup := 0
			for _, n := range seen {
				if n > 1 {
					dup++
				}
			}
			if missed > 0 || dup > 0 || len(seen) != len(committed) {
				t.Fatalf("%d committed rows, the poller saw %d: %d missed, %d more than once", len(committed), len(seen), missed, dup)
			}
			if len(committed) < 50 {
				t.Fatalf("only %d rows written", len(committed))
			}
			t.Logf("%d rows, each seen once", len(committed))
		})
	}
}
