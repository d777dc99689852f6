package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// termsJSON is how terms are kept in the contracts.terms column.
type termsJSON struct {
	Title     string     `json:"title"`
	Summary   string     `json:"summary"`
	Items     []itemJSON `json:"items"`
	Retention string     `json:"retention"`
	Duration  *string    `json:"duration"`
	// RenewalNotice is absent when the contract set none (the default
	// applies), as in every contract stored before renewal existed.
	RenewalNotice *string `json:"renewal_notice,omitempty"`
	Reward        struct {
		JoinBonus       int64  `json:"join_bonus"`
		Vesting         string `json:"vesting"`
		PointsPerPeriod int64  `json:"points_per_period"`
		Period          string `json:"period"`
		MaxPeriods      int    `json:"max_periods"`
	} `json:"reward"`
	MinAge int `json:"min_age,omitempty"`
	// PointsExpireAfter is read by the ledger_lots trigger (00027) as an
	// interval: the expiry of the lots this contract's credits open.
	PointsExpireAfter *string `json:"points_expire_after,omitempty"`
	// The value estimate and the programme identity frozen at publish are
	// absent from terms stored before they existed.
	ValueEstimate    *valueEstimateJSON `json:"value_estimate,omitempty"`
	ValueMethod      string             `json:"value_method,omitempty"`
	ValueExplanation string             `json:"value_explanation,omitempty"`
	Programme        *programmeJSON     `json:"programme,omitempty"`
}

type valueEstimateJSON struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	Per      string `json:"per"`
}

type programmeJSON struct {
	Version       int       `json:"version"`
	LegalName     string    `json:"legal_name"`
	Address       string    `json:"address"`
	ContactEmail  string    `json:"contact_email"`
	DPOContact    string    `json:"dpo_contact"`
	AuthorityName string    `json:"authority_name"`
	ComplaintURL  string    `json:"complaint_url"`
	PointCurrency string    `json:"point_currency"`
	PointAmount   string    `json:"point_amount"`
	Jurisdictions []string  `json:"jurisdictions"`
	CreatedAt     time.Time `json:"created_at"`
}

type itemJSON struct {
	Category   string   `json:"category"`
	Purpose    string   `json:"purpose"`
	Recipients []string `json:"recipients"`
}

type contractRecord struct {
	ID                     string `gorm:"primaryKey"`
	FamilyID               string
	Version                int
	Status                 string
	Terms                  []byte `gorm:"type:jsonb"`
	CanonicalTerms         *string
	TermsHash              *string
	JoinBonus              int64
	Vesting                string
	PointsPerPeriod        int64
	RewardPeriod           *string
	RewardPeriodMinSeconds *float64
	MaxPeriods             *int
	ConsentDuration        *string
	Retention              string
	CreatedAt              time.Time
	PublishedAt            *time.Time
	RetiredAt              *time.Time
}

func (contractRecord) TableName() string { return "contracts" }

func durationOrEmpty(d domain.Duration) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func contractToRecord(c domain.Contract) (contractRecord, error) {
	t := c.Terms()
	var tj termsJSON
	tj.Title, tj.Summary, tj.Retention, tj.MinAge = t.Title, t.Summary, t.Retention.String(), t.MinAge
	for _, it := range t.Items {
		tj.Items = append(tj.Items, itemJSON{it.Category, it.Purpose, it.Recipients})
	}
	if t.Duration != nil {
		d := t.Duration.String()
		tj.Duration = &d
	}
	if t.RenewalNotice != nil {
		d := t.RenewalNotice.String()
		tj.RenewalNotice = &d
	}
	if t.PointsExpireAfter != nil {
		d := t.PointsExpireAfter.String()
		tj.PointsExpireAfter = &d
	}
	tj.Reward.JoinBonus, tj.Reward.PointsPerPeriod, tj.Reward.MaxPeriods = t.Reward.JoinBonus, t.Reward.PointsPerPeriod, t.Reward.MaxPeriods
	tj.Reward.Vesting, tj.Reward.Period = durationOrEmpty(t.Reward.Vesting), durationOrEmpty(t.Reward.Period)
	if e := t.Value; e != nil {
		tj.ValueEstimate = &valueEstimateJSON{e.Amount, e.Currency, durationOrEmpty(e.Per)}
	}
	tj.ValueMethod, tj.ValueExplanation = t.ValueMethod, t.ValueExplanation
	if p := t.Programme; p != nil {
		tj.Programme = &programmeJSON{p.Version, p.LegalName, p.Address, p.ContactEmail, p.DPOContact, p.AuthorityName,
			p.ComplaintURL, p.PointValue.Currency, p.PointValue.Amount, p.Jurisdictions, p.CreatedAt}
	}
	raw, err := json.Marshal(tj)
	if err != nil {
		return contractRecord{}, err
	}
	rec := contractRecord{
		ID: c.ID(), FamilyID: c.FamilyID(), Version: c.Version(), Status: string(c.Status()), Terms: raw,
		JoinBonus: t.Reward.JoinBonus, Vesting: "PT0S", PointsPerPeriod: t.Reward.PointsPerPeriod,
		Retention: t.Retention.String(), CreatedAt: c.CreatedAt(), PublishedAt: c.PublishedAt(), RetiredAt: c.RetiredAt(),
	}
	if !t.Reward.Vesting.IsZero() {
		rec.Vesting = t.Reward.Vesting.String()
	}
	if !t.Reward.Period.IsZero() {
		p := t.Reward.Period.String()
		secs := t.Reward.Period.Shortest().Seconds()
		rec.RewardPeriod, rec.RewardPeriodMinSeconds = &p, &secs
	}
	if t.Reward.MaxPeriods > 0 {
		m := t.Reward.MaxPeriods
		rec.MaxPeriods = &m
	}
	rec.ConsentDuration = tj.Duration
	if c.TermsHash() != "" {
		h, canon := c.TermsHash(), string(c.CanonicalTerms())
		rec.TermsHash, rec.CanonicalTerms = &h, &canon
	}
	return rec, nil
}

func (r contractRecord) toDomain() (domain.Contract, error) {
	var tj termsJSON
	if err := json.Unmarshal(r.Terms, &tj); err != nil {
		return domain.Contract{}, fmt.Errorf("contract %s terms: %w", r.ID, err)
	}
	parse := func(s string) domain.Duration {
		if s == "" {
			return domain.Duration{}
		}
		d, _ := domain.ParseDuration(s)
		return d
	}
	t := domain.Terms{Title: tj.Title, Summary: tj.Summary, Retention: parse(tj.Retention), MinAge: tj.MinAge}
	for _, it := range tj.Items {
		t.Items = append(t.Items, domain.Item{Category: it.Category, Purpose: it.Purpose, Recipients: it.Recipients})
	}
	if tj.Duration != nil {
		d := parse(*tj.Duration)
		t.Duration = &d
	}
	if tj.PointsExpireAfter != nil {
		d := parse(*tj.PointsExpireAfter)
		t.PointsExpireAfter = &d
	}
	if tj.RenewalNotice != nil {
		d := parse(*tj.RenewalNotice)
		t.RenewalNotice = &d
	} else if t.Duration != nil && r.Status != string(domain.ContractDraft) {
		// Published before Publish wrote the notice into the terms: under
		// the default of the time, P14D, which its canonical terms (when
		// they name a notice) hash and renewalNoticeSQL falls back to.
		d := domain.DefaultRenewalNotice
		t.RenewalNotice = &d
	}
	t.Reward = domain.Reward{JoinBonus: tj.Reward.JoinBonus, Vesting: parse(tj.Reward.Vesting),
		PointsPerPeriod: tj.Reward.PointsPerPeriod, Period: parse(tj.Reward.Period), MaxPeriods: tj.Reward.MaxPeriods}
	if e := tj.ValueEstimate; e != nil {
		t.Value = &domain.ValueEstimate{Amount: e.Amount, Currency: e.Currency, Per: parse(e.Per)}
	}
	t.ValueMethod, t.ValueExplanation = tj.ValueMethod, tj.ValueExplanation
	if p := tj.Programme; p != nil {
		t.Programme = &domain.Programme{Version: p.Version, LegalName: p.LegalName, Address: p.Address, ContactEmail: p.ContactEmail,
			DPOContact: p.DPOContact, AuthorityName: p.AuthorityName, ComplaintURL: p.ComplaintURL,
			PointValue: domain.PointValue{Currency: p.PointCurrency, Amount: p.PointAmount}, Jurisdictions: p.Jurisdictions, CreatedAt: p.CreatedAt.UTC()}
	}
	var canonical []byte
	var hash string
	if r.CanonicalTerms != nil {
		canonical = []byte(*r.CanonicalTerms)
	}
	if r.TermsHash != nil {
		hash = *r.TermsHash
	}
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	return domain.RehydrateContract(r.ID, r.FamilyID, r.Version, domain.ContractStatus(r.Status), t, canonical, hash,
		r.CreatedAt.UTC(), utc(r.PublishedAt), utc(r.RetiredAt)), nil
}

func contractsOf(recs []contractRecord) ([]domain.Contract, error) {
	out := make([]domain.Contract, 0, len(recs))
	for _, r := range recs {
		c, err := r.toDomain()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Store) CreateContract(ctx context.Context, c domain.Contract) error {
	rec, err := contractToRecord(c)
	if err != nil {
		return err
	}
	return translate(s.db.WithContext(ctx).Create(&rec).Error, "contract")
}

func (s *Store) GetContract(ctx context.Context, id string) (domain.Contract, error) {
	if !isUUID(id) {
		return domain.Contract{}, domain.ErrContractNotFound
	}
	var rec contractRecord
	if err := s.db.WithContext(ctx).First(&rec, "id = ?", id).Error; err != nil {
		return domain.Contract{}, translate(err, "contract")
	}
	return rec.toDomain()
}

func (s *Store) ContractVersion(ctx context.Context, familyID string, version int) (domain.Contract, bool, error) {
	var recs []contractRecord
	if err := s.db.WithContext(ctx).Where("family_id = ? AND version = ?", familyID, version).Limit(1).Find(&recs).Error; err != nil {
		return domain.Contract{}, false, err
	}
	if len(recs) == 0 {
		return domain.Contract{}, false, nil
	}
	c, err := recs[0].toDomain()
	return c, err == nil, err
}

func (s *Store) listContracts(scope string, q *gorm.DB, timeCol string, page app.Page) ([]domain.Contract, string, error) {
	recs, next, err := findPage(s, scope, q, timeCol, page, func(r contractRecord) (time.Time, string) {
		if timeCol == "published_at" {
			return *r.PublishedAt, r.ID
		}
		return r.CreatedAt, r.ID
	})
	if err != nil {
		return nil, "", err
	}
	out, err := contractsOf(recs)
	return out, next, err
}

func (s *Store) ListContracts(ctx context.Context, status domain.ContractStatus, page app.Page) ([]domain.Contract, string, error) {
	q := s.db.WithContext(ctx).Model(&contractRecord{})
	if status != "" {
		q = q.Where("status = ?", string(status))
	}
	return s.listContracts(listScope("contracts", string(status)), q, "created_at", page)
}

func (s *Store) ListOffers(ctx context.Context, page app.Page) ([]domain.Contract, string, error) {
	return s.listContracts("offers", s.db.WithContext(ctx).Model(&contractRecord{}).Where("status = 'published'"), "published_at", page)
}

// lockContract reads a contract FOR UPDATE inside tx.
func lockContract(tx *gorm.DB, id string) (domain.Contract, error) {
	if !isUUID(id) {
		return domain.Contract{}, domain.ErrContractNotFound
	}
	var rec contractRecord
	if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).First(&rec, "id = ?", id).Error; err != nil {
		return domain.Contract{}, translate(err, "contract")
	}
	return rec.toDomain()
}

func saveContract(tx *gorm.DB, c domain.Contract) error {
	rec, err := contractToRecord(c)
	if err != nil {
		return err
	}
	return translate(tx.Save(&rec).Error, "contract")
}

func (s *Store) UpdateContract(ctx context.Context, id string, fn func(*domain.Contract) error) (domain.Contract, error) {
	var out domain.Contract
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := lockContract(tx, id)
		if err != nil {
			return fmt.Errorf("lock contract: %w", err)
		}
		if err := fn(&c); err != nil {
			return err
		}
		out = c
		if err := saveContract(tx, c); err != nil {
			return fmt.Errorf("save contract: %w", err)
		}
		return nil
	})
	return out, err
}

func (s *Store) PublishContract(ctx context.Context, id string, fn func(*domain.Contract) error) (domain.Contract, error) {
	var out domain.Contract
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := lockContract(tx, id)
		if err != nil {
			return fmt.Errorf("lock contract: %w", err)
		}
		if err := fn(&c); err != nil {
			return err
		}
		// Earlier published versions of the family stop taking new joins;
		// members already on them keep their exchange.
		var previous []string
		if err := tx.Model(&contractRecord{}).Where("family_id = ? AND status = 'published' AND id <> ?", c.FamilyID(), c.ID()).
			Order("id").Pluck("id", &previous).Error; err != nil {
			return fmt.Errorf("find published versions: %w", err)
		}
		if err := lockVersionsExclusive(tx, previous...); err != nil {
			return fmt.Errorf("wait for joins on published versions: %w", err)
		}
		if err := tx.Model(&contractRecord{}).
			Where("family_id = ? AND status = 'published' AND id <> ?", c.FamilyID(), c.ID()).
			Updates(map[string]any{"status": "retired", "retired_at": *c.PublishedAt()}).Error; err != nil {
			return fmt.Errorf("retire published versions: %w", err)
		}
		out = c
		if err := saveContract(tx, c); err != nil {
			return fmt.Errorf("save contract: %w", err)
		}
		return nil
	})
	return out, err
}

func (s *Store) CreateNextVersion(ctx context.Context, fromID string, fn func(domain.Contract) (domain.Contract, error)) (domain.Contract, error) {
	var out domain.Contract
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		from, err := lockContract(tx, fromID)
		if err != nil {
			return fmt.Errorf("lock contract: %w", err)
		}
		var latest int
		if err := tx.Model(&contractRecord{}).Where("family_id = ?", from.FamilyID()).
			Select("max(version)").Scan(&latest).Error; err != nil {
			return fmt.Errorf("read latest version: %w", err)
		}
		if latest != from.Version() {
			return domain.Conflict("not-latest-version", fmt.Sprintf("version %d exists; create new versions from the latest", latest))
		}
		next, err := fn(from)
		if err != nil {
			return err
		}
		rec, err := contractToRecord(next)
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		out = next
		if err := translate(tx.Create(&rec).Error, "contract"); err != nil {
			return fmt.Errorf("insert version: %w", err)
		}
		return nil
	})
	return out, err
}

func (s *Store) RetireContract(ctx context.Context, id string, terminate bool, fn func(*domain.Contract) error) (domain.Contract, int, error) {
	var out domain.Contract
	var n int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockVersionsExclusive(tx, id); err != nil {
			return fmt.Errorf("wait for joins on the version: %w", err)
		}
		c, err := lockContract(tx, id)
		if err != nil {
			return fmt.Errorf("lock contract: %w", err)
		}
		if err := fn(&c); err != nil {
			return err
		}
		if err := saveContract(tx, c); err != nil {
			return fmt.Errorf("save contract: %w", err)
		}
		out = c
		if !terminate {
			return nil
		}
		named := map[string]any{"contract": c.ID()}
		if err := lockMembers(tx, `SELECT member_id FROM exchanges WHERE contract_id = @contract AND status = 'active'`, named); err != nil {
			return fmt.Errorf("lock members: %w", err)
		}
		// Consent that has already lapsed expired; it is not terminated.
		lapsed, err := endExchanges(tx, "e.contract_id = @contract AND "+lapsedAt("clock_timestamp()"),
			[]any{"contract", c.ID()}, "expired", "e.expires_at", "system")
		if err != nil {
			return fmt.Errorf("expire lapsed exchanges: %w", err)
		}
		if err := s.afterEnded(tx, lapsed, "exchange.expired"); err != nil {
			return fmt.Errorf("notify expiries: %w", err)
		}
		ended, err := endExchanges(tx, "e.contract_id = @contract", []any{"contract", c.ID()}, "terminated", "clock_timestamp()", "marketer")
		if err != nil {
			return fmt.Errorf("terminate exchanges: %w", err)
		}
		n = len(ended)
		if err := s.afterEnded(tx, ended, "exchange.terminated"); err != nil {
			return fmt.Errorf("notify terminations: %w", err)
		}
		return nil
	})
	return out, n, err
}

// ContractStats counts exchanges by status, the points they earned and the
// members who earned any, and tells when the first exchange joined (zero
// when none did). The points come from the exchanges' own counters
// (credited periods, vested bonus), which move in the same transactions as
// the ledger entries, so the statistic needs no scan of the ledger. The
// counts are raw: app.Contracts.Stats makes them k-anonymous.
func (s *Store) ContractStats(ctx context.Context, id string) (domain.ContractCounts, time.Time, error) {
	var row struct {
		Joins, Active, Cancelled, Expired, Terminated, Superseded, Erased int64
		PointsIssued, Contributors                                        int64
		First                                                             *time.Time
	}
	err := s.db.WithContext(ctx).Raw(`
SELECT count(*) AS joins,
       count(*) FILTER (WHERE e.status = 'active') AS active,
       count(*) FILTER (WHERE e.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE e.status = 'expired') AS expired,
       count(*) FILTER (WHERE e.status = 'terminated') AS terminated,
       count(*) FILTER (WHERE e.status = 'superseded') AS superseded,
       count(*) FILTER (WHERE e.status = 'erased') AS erased,
       coalesce(sum(e.credited_periods * c.points_per_period), 0)
         + coalesce(sum(e.bonus_points) FILTER (WHERE e.bonus_state = 'vested'), 0) AS points_issued,
       count(DISTINCT e.member_id) FILTER (WHERE e.credited_periods * c.points_per_period > 0
         OR (e.bonus_state = 'vested' AND e.bonus_points > 0)) AS contributors,
       min(e.joined_at) AS first
FROM exchanges e JOIN contracts c ON c.id = e.contract_id
WHERE e.contract_id = @id`, map[string]any{"id": id}).Scan(&row).Error
	var first time.Time
	if row.First != nil {
		first = row.First.UTC()
	}
	return domain.ContractCounts{Joins: row.Joins, Active: row.Active, Cancelled: row.Cancelled, Expired: row.Expired,
		Terminated: row.Terminated, Superseded: row.Superseded, Erased: row.Erased,
		PointsIssued: row.PointsIssued, Contributors: row.Contributors}, first, err
}

// ContractSeries is a version's time series from the bucket starting at
// from to the one starting at to (both UTC, truncated to step): per bucket
// the exchanges joined, the exchanges that stopped being active (every
// ending, supersession included: domain.StatsBucket) and those active at
// its end, counting exchanges from before from. One statement: the
// exchanges are read once for their joins and once for their endings,
// grouped by bucket, and generate_series lays out every bucket, empty ones
// too; a running sum gives the active count.
func (s *Store) ContractSeries(ctx context.Context, id string, step domain.StatsStep, from, to time.Time) ([]domain.StatsBucket, error) {
	var rows []struct {
		Start                  time.Time
		Joins, Endings, Active int64
	}
	const layout = "2006-01-02 15:04:05"
	err := s.db.WithContext(ctx).Raw(`
WITH per AS (
  SELECT b, sum(j) AS j, sum(en) AS en FROM (
    SELECT date_trunc(@step, e.joined_at AT TIME ZONE 'UTC') AS b, 1 AS j, 0 AS en
    FROM exchanges e WHERE e.contract_id = @id
    UNION ALL
    SELECT date_trunc(@step, e.ended_at AT TIME ZONE 'UTC'), 0, 1
    FROM exchanges e WHERE e.contract_id = @id AND e.ended_at IS NOT NULL
  ) ev GROUP BY b
), before AS (
  SELECT coalesce(sum(j - en), 0) AS n FROM per WHERE b < CAST(@from AS timestamp)
)
SELECT s.b AT TIME ZONE 'UTC' AS start, coalesce(per.j, 0) AS joins, coalesce(per.en, 0) AS endings,
       (SELECT n FROM before) + sum(coalesce(per.j, 0) - coalesce(per.en, 0)) OVER (ORDER BY s.b) AS active
FROM generate_series(CAST(@from AS timestamp), CAST(@to AS timestamp), CAST('1 ' || @step AS interval)) AS s(b)
LEFT JOIN per ON per.b = s.b
ORDER BY s.b`, map[string]any{"id": id, "step": string(step), "from": from.UTC().Format(layout), "to": to.UTC().Format(layout)}).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]domain.StatsBucket, len(rows))
	for i, r := range rows {
		start := r.Start.UTC()
		end := start.AddDate(0, 0, 1)
		switch step {
		case domain.StatsWeek:
			end = start.AddDate(0, 0, 7)
		case domain.StatsMonth:
			end = start.AddDate(0, 1, 0)
		}
		out[i] = domain.StatsBucket{Start: start, End: end, Joins: r.Joins, Active: r.Active, Endings: r.Endings}
	}
	return out, nil
}

// lockVersionsExclusive waits for joins in progress on the versions to end
// and keeps new ones out until the transaction ends (joins take the same
// advisory lock in shared mode).
func lockVersionsExclusive(tx *gorm.DB, ids ...string) error {
	for _, id := range ids {
		if !isUUID(id) {
			continue
		}
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS text), 0))`, id).Error; err != nil {
			return err
		}
	}
	return nil
}
