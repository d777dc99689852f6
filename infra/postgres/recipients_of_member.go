package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// recipientsOfMemberSQL reads one page of the recipients a member's
// exchanges ever granted data to (keyset on the recipient id), one row per
// (recipient, exchange). An exchange whose consent lapsed but that no write
// has recorded yet reads as expired at expires_at, its deletion due at
// expires_at + retention, as every other member view shows it. Reads count
// the recipient's served reads in the member's access log (a refused
// attempt, logged with its reason, is not a read).
const recipientsOfMemberSQL = `
WITH mine AS (
    SELECT g.recipient_id, e.id AS exchange_id, e.contract_id, c.version, e.status, e.joined_at, e.ended_at, e.expires_at,
           g.categories, g.purposes, c.retention, a.due_at, a.confirmed_at,
           (e.status = 'active' AND e.expires_at <= now()) AS lapsed
    FROM exchanges e JOIN contracts c ON c.id = e.contract_id ` + grantsByRecipient + `
    LEFT JOIN deletion_acks a ON a.exchange_id = e.id AND a.recipient_id = g.recipient_id
    WHERE e.member_id = @member
), page AS (
    SELECT DISTINCT recipient_id FROM mine WHERE recipient_id > CAST(@after AS uuid) ORDER BY recipient_id LIMIT @limit
)
SELECT r.id AS recipient_id, r.name, r.kind, r.country, r.privacy_policy_url, r.created_at,
       m.exchange_id, m.contract_id, m.version,
       CASE WHEN m.lapsed THEN 'expired' ELSE m.status END AS status,
       m.categories, m.purposes, m.joined_at, m.expires_at,
       COALESCE(m.ended_at, CASE WHEN m.lapsed THEN m.expires_at END) AS until,
       COALESCE(m.due_at, CASE WHEN m.lapsed THEN m.expires_at + m.retention END) AS deletion_due,
       m.confirmed_at AS deleted_at,
       reads.n AS reads, reads.last AS last_read
FROM page p JOIN recipients r ON r.id = p.recipient_id JOIN mine m ON m.recipient_id = p.recipient_id
CROSS JOIN LATERAL (
    SELECT count(*) AS n, max(l.at) AS last FROM access_log l
    WHERE l.member_id = @member AND l.accessor_role = 'partner' AND l.accessor_id = r.id::text AND l.refused IS NULL
) reads
ORDER BY r.id, m.joined_at, m.exchange_id`

type recipientGrantRecord struct {
	RecipientID      string
	Name             string
	Kind             string
	Country          string
	PrivacyPolicyURL string
	CreatedAt        time.Time
	ExchangeID       string
	ContractID       string
	Version          int
	Status           string
	Categories       []byte
	Purposes         []byte
	JoinedAt         time.Time
	ExpiresAt        *time.Time
	Until            *time.Time
	DeletionDue      *time.Time
	DeletedAt        *time.Time
	Reads            int64
	LastRead         *time.Time
}

// RecipientsOfMember lists, a page of recipients at a time (ordered by
// id), every recipient that any of the member's exchanges ever named, with
// each grant.
func (s *Store) RecipientsOfMember(ctx context.Context, memberID string, page app.Page) ([]app.MemberRecipient, string, error) {
	scope := listScope("recipients-of-member", memberID)
	after := "00000000-0000-0000-0000-000000000000"
	if page.Cursor != "" {
		parts, err := s.openCursor(ctx, scope, page.Cursor, 1)
		if err != nil {
			return nil, "", err
		}
		if !isUUID(parts[0]) {
			return nil, "", errBadCursor
		}
		after = parts[0]
	}
	var recs []recipientGrantRecord
	if err := s.db.WithContext(ctx).Raw(recipientsOfMemberSQL,
		map[string]any{"member": memberID, "after": after, "limit": page.Limit + 1}).Scan(&recs).Error; err != nil {
		return nil, "", err
	}
	var out []app.MemberRecipient
	for _, r := range recs {
		if len(out) == 0 || out[len(out)-1].Recipient.ID != r.RecipientID {
			out = append(out, app.MemberRecipient{
				Recipient: recipientRecord{r.RecipientID, r.Name, r.Kind, r.Country, r.PrivacyPolicyURL, r.CreatedAt}.toDomain(),
				Reads:     r.Reads, LastRead: utcPtr(r.LastRead)})
		}
		g := app.RecipientGrant{ExchangeID: r.ExchangeID, ContractID: r.ContractID, Version: r.Version,
			Status: domain.ExchangeStatus(r.Status), Categories: []string{}, Purposes: []string{}, From: r.JoinedAt.UTC(),
			Until: utcPtr(r.Until), ExpiresAt: utcPtr(r.ExpiresAt), DeletionDue: utcPtr(r.DeletionDue), DeletedAt: utcPtr(r.DeletedAt)}
		if err := json.Unmarshal(r.Categories, &g.Categories); err != nil {
			return nil, "", err
		}
		if err := json.Unmarshal(r.Purposes, &g.Purposes); err != nil {
			return nil, "", err
		}
		last := &out[len(out)-1]
		last.Grants = append(last.Grants, g)
	}
	next := ""
	if len(out) > page.Limit {
		out = out[:page.Limit]
		var err error
		if next, err = s.sealCursor(ctx, scope, out[len(out)-1].Recipient.ID); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}
