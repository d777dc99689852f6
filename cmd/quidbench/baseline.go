package main

// The raw baselines: the least SQL each operation needs, written here from
// the schema (migrations/) and the API's contract (openapi.yaml), straight
// on pgx, without HTTP, tokens, use cases, gorm or receipt signing. They
// share nothing with infra/postgres: they say what the database work of an
// operation costs on this machine, so the service's figures can be read as
// a ratio to it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rawContract is what a join needs to know of a published version, loaded
// once (the service caches published versions too).
type rawContract struct {
	id, family, hash string
	terms, canonical string // as stored, for seeding copies
	retention        string
	version          int
	bonus            int64
	vesting, period  time.Duration
	recipients       []string                   // in the order of the terms
	grants           map[string]*recipientGrant // by recipient id
}

type recipientGrant struct{ categories, purposes []string }

func loadRawContract(ctx context.Context, pool *pgxpool.Pool, id string) (*rawContract, error) {
	c := &rawContract{id: id, grants: map[string]*recipientGrant{}}
	var vesting, period float64
	err := pool.QueryRow(ctx, `SELECT family_id::text, terms_hash, version, join_bonus,
		extract(epoch FROM vesting)::float8, coalesce(extract(epoch FROM reward_period), 0)::float8,
		terms::text, canonical_terms, retention::text
		FROM contracts WHERE id = $1`, id).Scan(&c.family, &c.hash, &c.version, &c.bonus, &vesting, &period,
		&c.terms, &c.canonical, &c.retention)
	if err != nil {
		return nil, fmt.Errorf("load contract %s: %w", id, err)
	}
	c.vesting, c.period = time.Duration(vesting*1e9), time.Duration(period*1e9)
	var t struct {
		Items []struct {
			Category, Purpose string
			Recipients        []string
		}
	}
	if err := json.Unmarshal([]byte(c.terms), &t); err != nil {
		return nil, err
	}
	for _, it := range t.Items {
		for _, r := range it.Recipients {
			g, ok := c.grants[r]
			if !ok {
				g = &recipientGrant{}
				c.grants[r] = g
				c.recipients = append(c.recipients, r)
			}
			g.categories = addSorted(g.categories, it.Category)
			g.purposes = addSorted(g.purposes, it.Purpose)
		}
	}
	return c, nil
}

func addSorted(set []string, v string) []string {
	i := sort.SearchStrings(set, v)
	if i < len(set) && set[i] == v {
		return set
	}
	return append(set[:i], append([]string{v}, set[i:]...)...)
}

// The read of a join: after the member's row lock, the contract's status,
// whether this member (or, kept as a keyed hash since an erasure, an
// earlier member with the same subject) was ever paid the family's bonus,
// and the member's active exchange in the family, if any.
const rawJoinLock = `SELECT 1 FROM members WHERE id = $1 AND erased_at IS NULL FOR UPDATE`

const rawJoinRead = `SELECT now(), c.status,
       EXISTS (SELECT 1 FROM ledger_entries l WHERE l.member_id = $1 AND l.family_id = c.family_id AND l.kind = 'bonus_pending')
    OR EXISTS (SELECT 1 FROM erased_bonus_claims b WHERE b.digest = bonus_claim_digest($1, c.family_id)),
       e.id::text, e.contract_id::text, e.bonus_state, e.bonus_points, e.bonus_vests_at
FROM contracts c
LEFT JOIN exchanges e ON e.member_id = $1 AND e.family_id = c.family_id AND e.status = 'active'
WHERE c.id = $2`

// rawJoin joins member to c in two round trips: BEGIN, the lock and the read
// pipelined; then the writes and COMMIT pipelined. With an active exchange
// of an older version in the family it is a re-consent: the old exchange is
// superseded and its pending bonus carried over. receipt stands for the
// signed consent receipt (the service signs one; this stores as many bytes).
// Left out, as not needed for the rows to be right in this benchmark: the
// service's shared advisory lock against a version retired mid-join, and
// the expiry of lapsed exchanges found on the way.
func rawJoin(ctx context.Context, pool *pgxpool.Pool, member string, c *rawContract, contracts map[string]*rawContract, receipt string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	pc := conn.Conn()
	if err := rawJoinOn(ctx, pc, member, c, contracts, receipt); err != nil {
		_, _ = pc.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	return nil
}

func rawJoinOn(ctx context.Context, pc *pgx.Conn, member string, c *rawContract, contracts map[string]*rawContract, receipt string) error {
	read := &pgx.Batch{}
	read.Queue("BEGIN")
	read.Queue(rawJoinLock, member)
	read.Queue(rawJoinRead, member, c.id)
	br := pc.SendBatch(ctx, read)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return err
	}
	enrolled := rows.Next()
	rows.Close()
	var (
		now                time.Time
		status             string
		paid               bool
		oldID, oldContract *string
		oldBonusState      *string
		oldBonusPoints     *int64
		oldVests           *time.Time
	)
	readErr := br.QueryRow().Scan(&now, &status, &paid, &oldID, &oldContract, &oldBonusState, &oldBonusPoints, &oldVests)
	if err := errors.Join(rows.Err(), readErr, br.Close()); err != nil {
		return err
	}
	switch {
	case !enrolled:
		return errors.New("raw join: member not enrolled")
	case status != "published":
		return errors.New("raw join: contract not published")
	case oldContract != nil && *oldContract == c.id:
		return errors.New("raw join: already joined")
	}

	id := uuid.NewString()
	bonusState, bonusPoints, vests := "none", int64(0), (*time.Time)(nil)
	credit := int64(0)
	if !paid && c.bonus > 0 {
		bonusState, bonusPoints, credit = "pending", c.bonus, c.bonus
		v := now.Add(c.vesting)
		vests = &v
	}
	write := &pgx.Batch{}
	if oldID != nil {
		old := contracts[*oldContract]
		if old == nil {
			return fmt.Errorf("raw join: unknown contract %s", *oldContract)
		}
		if *oldBonusState == "pending" { // the pending bonus moves to the new exchange
			bonusState, bonusPoints, vests = "pending", *oldBonusPoints, oldVests
		}
		write.Queue(`UPDATE exchanges SET status = 'superseded', ended_at = $2, next_period_end = NULL,
			bonus_state = CASE WHEN bonus_state = 'pending' THEN 'transferred' ELSE bonus_state END WHERE id = $1`, *oldID, now)
		write.Queue(`INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
			VALUES ($1, $2, $3, $4, 'superseded', 'member', $5)`, *oldID, member, old.id, old.hash, now)
		for _, r := range old.recipients {
			queueEvent(write, r, "exchange.superseded", now, old, *oldID, member, "superseded", now, map[string]any{"ended_at": utc(now), "successor_contract_id": c.id})
		}
	}
	var next any
	if c.period > 0 {
		next = now.Add(c.period)
	}
	write.Queue(`INSERT INTO exchanges (id, member_id, contract_id, family_id, terms_hash, status, joined_at,
			bonus_points, bonus_state, bonus_vests_at, next_period_end, receipt_id, receipt)
		VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $10, $11, $12)`,
		id, member, c.id, c.family, c.hash, now, bonusPoints, bonusState, vests, next, uuid.NewString(), receipt)
	write.Queue(`INSERT INTO consent_events (exchange_id, member_id, contract_id, terms_hash, kind, actor, at)
		VALUES ($1, $2, $3, $4, 'joined', 'member', $5)`, id, member, c.id, c.hash, now)
	if credit > 0 {
		write.Queue(`INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, created_at)
			VALUES ($1, 'bonus_pending', $2, $3, $4, $5, $6, $7)`, member, credit, id, c.id, c.family, c.hash, now)
		write.Queue(`UPDATE members SET pending = pending + $2 WHERE id = $1`, member, credit)
	}
	for _, r := range c.recipients {
		queueEvent(write, r, "exchange.joined", now, c, id, member, "active", now, map[string]any{"joined_at": utc(now), "expires_at": nil})
	}
	write.Queue("COMMIT")
	return pc.SendBatch(ctx, write).Close()
}

// queueEvent queues the outbox row of one webhook event to one recipient,
// with the payload openapi.yaml's webhooks section describes.
func queueEvent(b *pgx.Batch, recipient, kind string, at time.Time, c *rawContract, exchange, member, status string, now time.Time, extra map[string]any) {
	g := c.grants[recipient]
	data := map[string]any{"member_id": member, "exchange_id": exchange, "contract_id": c.id, "version": c.version,
		"terms_hash": c.hash, "status": status, "categories": g.categories, "purposes": g.purposes}
	for k, v := range extra {
		data[k] = v
	}
	payload, _ := json.Marshal(map[string]any{"type": kind, "timestamp": utc(at), "data": data})
	b.Queue(`INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, uuid.NewString(), recipient, kind, payload, now)
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// rawReplay is the least a replay needs: the stored response of the
// member's key, in one statement (comparing the stored request hash with
// the request's is left to the caller and costs no SQL).
func rawReplay(ctx context.Context, pool *pgxpool.Pool, member, key string) error {
	var hash string
	var response []byte
	if err := pool.QueryRow(ctx, `SELECT request_hash, response FROM idempotency_keys WHERE member_id = $1 AND key = $2`,
		member, key).Scan(&hash, &response); err != nil {
		return fmt.Errorf("raw replay: %w", err)
	}
	if len(response) < 10 {
		return errors.New("raw replay: no stored response")
	}
	return nil
}

// rawPartnerRead reads the member's attributes that active exchanges grant
// the partner for the purpose, keeps only those, logs the read, and renders
// the answer: one select, one insert.
func rawPartnerRead(ctx context.Context, pool *pgxpool.Pool, member, partner, partnerName, purpose string) error {
	rows, err := pool.Query(ctx, `SELECT m.attributes, e.id::text, i->>'category'
FROM members m
JOIN exchanges e ON e.member_id = m.id AND e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > now())
JOIN contracts c ON c.id = e.contract_id
CROSS JOIN LATERAL jsonb_array_elements(c.terms->'items') i
WHERE m.id = $1 AND m.erased_at IS NULL AND i->>'purpose' = $2 AND i->'recipients' @> to_jsonb($3::text)`, member, purpose, partner)
	if err != nil {
		return err
	}
	var attrs []byte
	var exchanges, categories []string
	for rows.Next() {
		var ex, cat string
		if err := rows.Scan(&attrs, &ex, &cat); err != nil {
			rows.Close()
			return err
		}
		exchanges, categories = addSorted(exchanges, ex), addSorted(categories, cat)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(categories) == 0 {
		return errors.New("raw partner read: no consent")
	}
	var all map[string]any
	if err := json.Unmarshal(attrs, &all); err != nil {
		return err
	}
	shown := map[string]any{}
	for _, c := range categories {
		if v, ok := all[c]; ok {
			shown[c] = v
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO access_log (member_id, accessor_role, accessor_id, accessor_name, purpose, categories, exchange_ids, request_id, at)
		VALUES ($1, 'partner', $2, $3, $4, $5, $6, $7, now())`, member, partner, partnerName, purpose, categories, exchanges, uuid.NewString()); err != nil {
		return err
	}
	_, err = json.Marshal(map[string]any{"member_id": member, "purpose": purpose, "attributes": shown})
	return err
}

// rawAccrual credits every due period of every active exchange as one
// set-based statement: the credits into ledger_entries, the exchanges'
// counters and next period, the members' balances. It returns how many
// credits it wrote.
func rawAccrual(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `
WITH due AS MATERIALIZED (
    SELECT e.id, e.member_id, e.contract_id, e.family_id, e.terms_hash, c.points_per_period AS points,
           e.next_period_end - c.reward_period AS period_start, e.next_period_end AS period_end, c.reward_period
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id
    WHERE e.status = 'active' AND e.next_period_end <= now() AND e.joined_at <= e.next_period_end - c.reward_period
      AND (c.max_periods IS NULL OR e.credited_periods < c.max_periods)
), credit AS (
    INSERT INTO ledger_entries (member_id, kind, points, exchange_id, contract_id, family_id, terms_hash, period_start, period_end, created_at)
    SELECT member_id, 'period_credit', points, id, contract_id, family_id, terms_hash, period_start, period_end, now() FROM due
), advance AS (
    UPDATE exchanges e SET credited_periods = e.credited_periods + 1, next_period_end = d.period_end + d.reward_period
    FROM due d WHERE e.id = d.id
), balance AS (
    UPDATE members m SET available = m.available + s.points
    FROM (SELECT member_id, sum(points) AS points FROM due GROUP BY member_id) s WHERE m.id = s.member_id
)
SELECT count(*) FROM due`).Scan(&n)
	return n, err
}
