package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// errNothingToErase answers an erasure request from a subject without a
// member: "PUT /v1/me first" would be a false next step there.
var errNothingToErase = domain.NotFound("nothing-to-erase", "nothing to erase: no member is enrolled under this subject, or its data was erased already")

// EraseMember ends every active exchange as erased, asks every recipient
// that ever received the member's data to delete it within 30 days (a
// deletion acknowledgement and a member.erasure_requested event each), and
// then removes everything that identifies the member or that they typed, all
// in one transaction:
//
//   - attributes, redemption references, objections and stored idempotent
//     responses (with their keys) are deleted;
//   - the member id is replaced by a random pseudonym (domain.NewPseudonym: "erased:<uuid>", a shape no token subject may have) in
//     every row that keeps it: the member row, its events, exchanges (whose
//     stored receipt copy, which names the member, is emptied), consent
//     events, ledger entries, the access log, deletion acknowledgements,
//     restriction periods (an open one ends) and webhook payloads. Amounts, kinds and times stay: the ledger and the
//     consent record are kept, no longer linked to the person;
//   - the member.erasure_requested events just written keep the member id
//     until delivered, given up or past their delete_by (erasureDeadline),
//     whichever comes first, because that is how a recipient knows whose
//     data to delete; then they are pseudonymised too (ForgetErasureRequests
//     bounds this for recipients that never register an endpoint);
//   - the member's points are forfeited (forfeitPoints): nobody can spend
//     them again, so they leave the liability as breakage, and no lot is left
//     for a points.expiring reminder to name the pseudonym in;
//   - for each contract family the member was paid a join bonus for, an
//     HMAC of (family, subject) is kept, so the same subject enrolling again
//     starts fresh but is not paid that bonus twice.
//
// The same subject may enrol again (PUT /v1/me) as a new member.
func (s *Store) EraseMember(ctx context.Context, memberID string) (app.Erasure, error) {
	var out app.Erasure
	err := s.inMemberTx(ctx, memberID, memberLock{absent: errNothingToErase}, func(tx *gorm.DB, _ memberRecord) error {
		if err := s.expireLapsed(tx, memberID); err != nil {
			return fmt.Errorf("expire lapsed exchanges: %w", err)
		}
		now, err := dbNow(tx)
		if err != nil {
			return fmt.Errorf("read clock: %w", err)
		}
		ended, err := endExchanges(tx, "e.member_id = @member", []any{"member", memberID}, "erased", "clock_timestamp()", "member")
		if err != nil {
			return fmt.Errorf("end exchanges: %w", err)
		}
		if err := forfeitPoints(s, tx, memberID); err != nil {
			return fmt.Errorf("forfeit points: %w", err)
		}
		named := map[string]any{"member": memberID, "now": now}
		if err := tx.Exec(`
INSERT INTO deletion_acks (exchange_id, recipient_id, member_id, due_at)
SELECT e.id, g.recipient_id, e.member_id, CAST(@now AS timestamptz) + interval '`+erasureDeadline+`'
FROM exchanges e JOIN contracts c ON c.id = e.contract_id `+grantsByRecipient+`
WHERE e.member_id = @member
ON CONFLICT (exchange_id, recipient_id) DO UPDATE SET due_at = LEAST(deletion_acks.due_at, EXCLUDED.due_at)
WHERE deletion_acks.confirmed_at IS NULL`, named).Error; err != nil {
			return fmt.Errorf("record deletion duties: %w", err)
		}
		var notified int
		if err := tx.Raw(`
WITH per_recipient AS (
    SELECT g.recipient_id, jsonb_agg(DISTINCT e.id) AS exchanges,
           jsonb_agg(DISTINCT cat) AS categories
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id `+grantsByRecipient+`
    CROSS JOIN LATERAL jsonb_array_elements_text(g.categories) cat
    WHERE e.member_id = @member
    GROUP BY g.recipient_id
), ins AS (
    INSERT INTO webhook_outbox (id, recipient_id, event_type, payload, created_at, next_attempt_at)
    SELECT gen_random_uuid(), recipient_id, 'member.erasure_requested', jsonb_build_object(
        'type', 'member.erasure_requested',
        'timestamp', `+utc("clock_timestamp()")+`,
        'data', jsonb_build_object('member_id', CAST(@member AS text), 'exchanges', exchanges, 'categories', categories,
            'delete_by', `+utc("CAST(@now AS timestamptz) + interval '"+erasureDeadline+"'")+`)),
        clock_timestamp(), clock_timestamp()
    FROM per_recipient
    RETURNING 1
)
SELECT count(*) FROM ins`, named).Scan(&notified).Error; err != nil {
			return fmt.Errorf("ask recipients to delete: %w", err)
		}
		// Signed out everywhere: a browser of the erased member must not
		// go on acting as the subject (issue 13, "signed out and gone").
		if err := tx.Exec(`DELETE FROM web_sessions WHERE subject = ? AND role = 'member'`, memberID).Error; err != nil {
			return fmt.Errorf("end web sessions: %w", err)
		}
		if err := pseudonymise(tx, memberID, now); err != nil {
			return fmt.Errorf("pseudonymise: %w", err)
		}
		families, err := bonusFamiliesRemembered(tx, memberID)
		if err != nil {
			return fmt.Errorf("count remembered bonus families: %w", err)
		}
		out = app.Erasure{ErasedAt: now, ExchangesEnded: len(ended), RecipientsNotified: notified, BonusFamilies: families}
		return nil
	})
	return out, err
}

// forfeitPoints settles and then writes off, under the member's lock and
// once their exchanges have ended, everything the member holds: what the
// ended exchanges still owe is settled first as the accrual worker would
// (periods up to the end credited, a bonus that vested by then vested, the
// rest already voided by the end), so that no worker run credits an erased
// member later; then every lot with points left is brought due now and
// expired by the one expiry path (expirePoints), so the lots trigger
// (migration 00024) still checks that the entry empties exactly those lots
// and the points land on the programme's expired account: breakage in the
// liability report. Afterwards the member holds nothing, available or
// pending.
func forfeitPoints(s *Store, tx *gorm.DB, memberID string) error {
	now, err := dbNow(tx)
	if err != nil {
		return err
	}
	ids := textArray([]string{memberID})
	if _, err := s.accrueMembers(tx, ids, now); err != nil {
		return fmt.Errorf("settle what ended exchanges owe: %w", err)
	}
	if err := tx.Exec(`UPDATE points_lots l SET expires_at = @now FROM ledger_entries c
		WHERE c.id = l.entry_id AND c.member_id = @member AND l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > @now)`,
		map[string]any{"member": memberID, "now": now}).Error; err != nil {
		return fmt.Errorf("bring the lots due: %w", err)
	}
	_, _, err = expirePoints(tx, ids, now)
	return err
}

// pseudonymise deletes what the member typed and replaces their id by a
// fresh pseudonym everywhere; the append-only tables accept that one change
// only while quid.erasure is on in this transaction.
func pseudonymise(tx *gorm.DB, memberID string, now any) error {
	pseudonym, err := domain.NewPseudonym()
	if err != nil {
		return err
	}
	named := map[string]any{"member": memberID, "pseudonym": pseudonym, "now": now}
	for _, stmt := range []string{
		`SELECT set_config('quid.erasure', 'on', true)`,
		`INSERT INTO erased_bonus_claims (digest)
		 SELECT DISTINCT bonus_claim_digest(@member, family_id) FROM ledger_entries
		 WHERE member_id = @member AND kind = 'bonus_pending' AND family_id IS NOT NULL
		 ON CONFLICT DO NOTHING`,
		`DELETE FROM ledger_references r USING ledger_entries l WHERE l.id = r.entry_id AND l.member_id = @member`,
		`DELETE FROM idempotency_keys WHERE member_id = @member`,
		`DELETE FROM member_objections WHERE member_id = @member`,
		`DELETE FROM lifted_objections WHERE member_id = @member`,
		// The tier job takes this lock exclusively for its one statement:
		// held shared until the erasure commits, the job's next statement
		// sees the member erased and never announces or stores their tier
		// again under their id.
		`SELECT pg_advisory_xact_lock_shared(` + tierJobLock + `)`,
		`DELETE FROM member_tiers WHERE member_id = @member`,
		// Restriction periods are times only; they keep the pseudonym so
		// that quid verify still sees that no credit overlapped one.
		`UPDATE member_restrictions SET member_id = @pseudonym, ended_at = COALESCE(ended_at, @now) WHERE member_id = @member`,
		`UPDATE ledger_entries SET member_id = @pseudonym WHERE member_id = @member`,
		`UPDATE consent_events SET member_id = @pseudonym WHERE member_id = @member`,
		`UPDATE access_log SET member_id = @pseudonym WHERE member_id = @member`,
		`UPDATE exchanges SET member_id = @pseudonym, receipt = '' WHERE member_id = @member`,
		`UPDATE deletion_acks SET member_id = @pseudonym WHERE member_id = @member`,
		// No index serves this scan of the outbox; erasures are rare and
		// an index on the payload would cost every join.
		`UPDATE webhook_outbox SET payload = jsonb_set(payload, '{data,member_id}', to_jsonb(CAST(@pseudonym AS text)))
		 WHERE payload->'data'->>'member_id' = @member
		   AND NOT (event_type = 'member.erasure_requested' AND delivered_at IS NULL AND failed_at IS NULL)`,
		`UPDATE members SET id = @pseudonym, attributes = '{}', erased_at = @now, updated_at = @now WHERE id = @member`,
		`INSERT INTO member_events (member_id, kind, at) VALUES (@pseudonym, 'erased', @now)`,
		`SELECT set_config('quid.erasure', '', true)`,
	} {
		var args []any
		if strings.Contains(stmt, "@") {
			args = []any{named}
		}
		if err := tx.Exec(stmt, args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// erasureRequestDelivered is the SET clause that pseudonymises a
// member.erasure_requested event once it is delivered or given up: its
// exchanges already carry the pseudonym.
const erasureRequestDelivered = `payload = CASE WHEN event_type = 'member.erasure_requested' THEN jsonb_set(payload, '{data,member_id}',
    to_jsonb(COALESCE((SELECT e.member_id FROM exchanges e WHERE e.id = CAST(payload->'data'->'exchanges'->>0 AS uuid) AND e.member_id LIKE 'erased:%'), 'erased'))) ELSE payload END`

// erasureDeadline is how long recipients have to delete an erased member's
// data: the delete_by of member.erasure_requested and the due date of its
// deletion acknowledgements. It also bounds how long those events keep the
// member id (ForgetErasureRequests).
const erasureDeadline = "30 days"

// ForgetErasureRequests pseudonymises the member.erasure_requested events
// still holding a member id once their delete_by has passed, delivered or
// not. Delivery and giving up pseudonymise an event, but the dispatcher only
// ever tries recipients with an endpoint: without this pass, an event for a
// recipient that never registers one would keep the id forever. Until the
// deadline it is kept, so a recipient that registers an endpoint within it
// still learns whose data to delete; afterwards the event can still be
// delivered, naming the pseudonym and the exchanges (which the recipient
// saw in its reads and confirms deletion by).
//
// Only undelivered, not given-up events can hold an id, so the scan stays
// in the dispatcher's partial index. Replicas may run it at once: rows
// another one holds are skipped (SKIP LOCKED), and the update is idempotent
// (the pseudonym is read from the event's exchange).
func (s *Store) ForgetErasureRequests(ctx context.Context) (int64, error) {
	const batch = 1000
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`UPDATE webhook_outbox SET `+erasureRequestDelivered+` WHERE id = ANY (ARRAY(
			SELECT o.id FROM webhook_outbox o
			WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.event_type = 'member.erasure_requested'
			  AND o.created_at <= clock_timestamp() - interval '`+erasureDeadline+`'
			  AND o.payload->'data'->>'member_id' <> COALESCE((SELECT e.member_id FROM exchanges e
			      WHERE e.id = CAST(o.payload->'data'->'exchanges'->>0 AS uuid) AND e.member_id LIKE 'erased:%'), 'erased')
			LIMIT ? FOR UPDATE SKIP LOCKED))`, batch)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < batch {
			return total, nil
		}
	}
}

// bonusFamiliesRemembered counts the contract families whose join bonus
// will not be paid again to subject: those with a keyed hash kept in
// erased_bonus_claims, from this erasure or an earlier one of the same
// subject. It hashes every family once; erasures are rare.
func bonusFamiliesRemembered(tx *gorm.DB, subject string) (int, error) {
	var n int
	err := tx.Raw(`SELECT count(*) FROM (SELECT DISTINCT family_id FROM contracts) f
		WHERE EXISTS (SELECT 1 FROM erased_bonus_claims b WHERE b.digest = bonus_claim_digest(?, f.family_id))`, subject).Scan(&n).Error
	return n, err
}

// reclaimErasedSubject frees a subject whose member row was marked erased
// but kept its id, as a release older than migration 00008 erased (a
// rolling deploy may still run one): the row and everything else still
// naming the subject are pseudonymised now, as erasure does today, keeping
// the erasure time, so the subject can enrol as a fresh member. The caller
// holds the row's lock.
func reclaimErasedSubject(tx *gorm.DB, subject string, erasedAt time.Time) error {
	return pseudonymise(tx, subject, erasedAt)
}
