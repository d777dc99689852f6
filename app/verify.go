package app

import (
	"context"
	"fmt"
	"time"
)

// InvariantRule names one rule `quid verify` checks. Its id is stable: it is
// what the report, the JSON output and alerting match on.
type InvariantRule struct {
	// ID is a kebab-case slug, e.g. "balance-equals-entries".
	ID string
	// Title says the rule in one line, as a reader of the report needs it.
	Title string
	// Source is where the rule is written down (DESIGN.md rule numbers).
	Source string
	// Counts names what Checked counts ("members", "period credits", ...).
	Counts string
}

// The invariants, in report order. Each is checked on one consistent
// snapshot of the database.
var (
	// RuleBalanceEqualsEntries: members.available and members.pending equal
	// the sum of the member's ledger entries (by kind: a bonus counts as
	// pending until vested or voided, everything else as available), no
	// entry belongs to a member that does not exist, and every exchange's
	// credited_periods counter equals its period credits. DESIGN.md rule 3
	// ("every balance equals the sum of its entries") and rule 12.
	RuleBalanceEqualsEntries = InvariantRule{ID: "balance-equals-entries",
		Title:  "every cached balance equals the sum of its ledger entries",
		Source: "DESIGN.md rules 3 and 12", Counts: "members"}
	// RuleBalanceNotNegative: no cached balance is negative, and neither is
	// a member's balance after any entry, the entries replayed in the order
	// they were written (entries written at the same instant: gains first).
	// DESIGN.md rule 3 ("no balance goes negative").
	RuleBalanceNotNegative = InvariantRule{ID: "balance-not-negative",
		Title:  "no balance is negative, now or after any entry",
		Source: "DESIGN.md rule 3", Counts: "members"}
	// RuleTransactionsBalanced: every ledger entry is a transaction with
	// postings (ledger_postings), and they sum to zero across accounts; no
	// posting belongs to an entry that does not exist. DESIGN.md rule 12
	// ("every transaction's postings sum to zero") and Words: Account,
	// posting.
	RuleTransactionsBalanced = InvariantRule{ID: "transactions-balanced",
		Title:  "every ledger transaction has postings and they sum to zero",
		Source: "DESIGN.md rule 12; Words: Account, posting", Counts: "ledger entries"}
	// RuleBalanceEqualsPostings: every account's balance equals the sum of
	// its postings: a member's available and pending (members.available,
	// members.pending) the sum of the postings on that account of the
	// member's entries; the programme's accounts, which are not cached,
	// hold what their postings sum to, and that is never of the wrong sign
	// (issued at most zero: it is minus what was issued; redeemed, expired
	// and voided at least zero); and all accounts together, members'
	// cached balances with the programme's, sum to zero. DESIGN.md rule 12
	// ("every balance equals its postings") and rule 3.
	RuleBalanceEqualsPostings = InvariantRule{ID: "balance-equals-postings",
		Title:  "every account's balance equals the sum of its postings, and all accounts sum to zero",
		Source: "DESIGN.md rules 3 and 12", Counts: "accounts"}
	// RuleLotsEqualAvailable: a member's available balance is held in
	// points lots (points_lots, one per entry that credited available),
	// so the remaining points of their lots sum to members.available; no
	// lot holds more than it was opened with or less than nothing, every
	// lot belongs to an existing entry, and every record of what a
	// redemption took from a lot joins a redemption and a lot of the same
	// member. DESIGN.md rule 3 and issue 14 (lots and expiry).
	RuleLotsEqualAvailable = InvariantRule{ID: "lots-equal-available",
		Title:  "every member's points lots hold exactly their available balance",
		Source: "DESIGN.md rule 3; issue 14 (lots)", Counts: "lots"}
	// RuleCreditInsideConsent: every period credit belongs to an existing
	// exchange of the same member, and its period [start, end) lies inside
	// that exchange's consent window [joined_at, min(ended_at, expires_at))
	// and ended before the credit was written. DESIGN.md rule 1 ("no points
	// without active consent"). Restriction has its own rule,
	// RuleCreditOutsideRestriction.
	RuleCreditInsideConsent = InvariantRule{ID: "credit-inside-consent",
		Title:  "no period credit outside an active consent window",
		Source: "DESIGN.md rule 1", Counts: "period credits"}
	// RuleCreditOutsideRestriction: no period credit's [start, end)
	// overlaps a restriction period [started_at, ended_at) of its member
	// (an open one reaches to now and beyond). DESIGN.md rule 11 ("the same
	// period is not paid") and Words: Restriction ("no earning, until
	// lifted").
	RuleCreditOutsideRestriction = InvariantRule{ID: "credit-outside-restriction",
		Title:  "no period credit overlaps a restriction of processing",
		Source: "DESIGN.md rule 11; Words: Restriction", Counts: "period credits"}
	// RuleOneCreditPerPeriod: no two period credits of an exchange cover the
	// same or overlapping time. DESIGN.md rule 2 ("exactly once").
	RuleOneCreditPerPeriod = InvariantRule{ID: "one-credit-per-period",
		Title:  "at most one credit per (exchange, period)",
		Source: "DESIGN.md rule 2", Counts: "period credits"}
	// RuleConsentEventsComplete: every exchange has exactly one "joined"
	// event at its joined_at, every ended exchange exactly one ending event
	// whose kind is its status at its ended_at, an active one none, each
	// event names the exchange's member and contract, and no event names an
	// exchange that does not exist. Renewals: every "renewed" event names
	// the exchange's member, contract and terms hash (a renewal keeps the
	// terms) and lies inside its consent, only consent with a duration is
	// renewed, and expires_at is joined_at plus (renewals + 1) durations, so
	// no expiry moves without its consent event. DESIGN.md "Exchange"
	// ("every change is an event in an append-only consent log"), "Renewal"
	// and rule 5.
	RuleConsentEventsComplete = InvariantRule{ID: "consent-events-complete",
		Title:  "every exchange has its join event, every ended exchange its ending event, every renewal its renewed event",
		Source: "DESIGN.md Words: Exchange, Renewal; rule 5", Counts: "exchanges"}
	// RuleBonusOncePerFamily: a member has at most one bonus_pending entry
	// and at most one bonus outcome (vested or voided) per contract family,
	// and no member holds a bonus for a family that an erased identity with
	// the same subject was already paid (erased_bonus_claims). DESIGN.md
	// Words: Reward ("the bonus is paid at most once per member per
	// contract") and rule 2.
	RuleBonusOncePerFamily = InvariantRule{ID: "bonus-once-per-family",
		Title:  "the join bonus is paid at most once per member and contract family",
		Source: "DESIGN.md Words: Reward; rule 2", Counts: "bonus entries"}
	// RuleDeletionDuties: every ended exchange has a deletion
	// acknowledgement row (deletion_acks) for each recipient its contract
	// named; a superseded exchange for each recipient the successor version
	// no longer gives all of those categories. DESIGN.md Words: Deletion
	// acknowledgement and rule 4.
	RuleDeletionDuties = InvariantRule{ID: "deletion-duties-recorded",
		Title:  "every ended exchange has the deletion duties of its recipients",
		Source: "DESIGN.md Words: Deletion acknowledgement; rule 4", Counts: "ended exchanges"}
	// RuleHistoryUnchanged: every ledger entry and consent event matches the
	// seal written at its insert (migration 00010: SHA-256 over the row
	// without member_id, chained to the member's previous row), so no row
	// was changed and none deleted from between others. Erasure rewrites
	// member_id only, which the seal leaves out. A ledger entry's postings
	// are exactly those its sealed kind and points make (the chart,
	// domain.PostingsOf; migration 00023), so the seal covers them too: no
	// posting was changed, added or deleted. DESIGN.md Words: Ledger ("no
	// entry is ever updated or deleted"), Exchange ("append-only consent
	// log"), rule 5.
	RuleHistoryUnchanged = InvariantRule{ID: "history-unchanged",
		Title:  "no ledger entry, posting or consent event was changed or deleted",
		Source: "DESIGN.md Words: Ledger, Exchange; rules 3 and 5", Counts: "ledger entries, postings and consent events"}
	// RuleGuardsInPlace: the triggers, unique indexes and checks that make
	// the database refuse what the rules forbid exist and are enabled
	// (a disabled trigger lets the next write past unnoticed). STYLE.md
	// convention 4; DESIGN.md rules 2 and 3.
	// RuleCatalogueStockCounted: a reward's stock less what is left of it
	// is exactly the units its active redemptions hold (so it was never
	// oversold, and a cancellation gave its unit back); every redemption
	// of a reward has a redemption entry of its points, and every
	// cancelled one a reversal of its member returning exactly them.
	// Issue 14 (reward catalogue).
	RuleCatalogueStockCounted = InvariantRule{ID: "catalogue-stock-counted",
		Title:  "every reward's stock is counted by its redemptions, and every redemption by its ledger entries",
		Source: "issue 14 (reward catalogue)", Counts: "rewards"}
	RuleGuardsInPlace = InvariantRule{ID: "guards-in-place",
		Title:  "the database's append-only triggers, unique indexes and checks are in place and enabled",
		Source: "STYLE.md 4; DESIGN.md rules 2 and 3", Counts: "guards"}
)

// InvariantRules lists every rule in report order.
var InvariantRules = []InvariantRule{
	RuleBalanceEqualsEntries, RuleBalanceNotNegative, RuleTransactionsBalanced, RuleBalanceEqualsPostings, RuleLotsEqualAvailable,
	RuleCreditInsideConsent, RuleCreditOutsideRestriction, RuleOneCreditPerPeriod, RuleConsentEventsComplete, RuleBonusOncePerFamily, RuleDeletionDuties, RuleHistoryUnchanged, RuleCatalogueStockCounted, RuleGuardsInPlace,
}

// Violation is one breach of a rule: whose, which rows, what is wrong.
type Violation struct {
	// RuleID is InvariantRule.ID.
	RuleID string
	// MemberID is the member (or pseudonym, for erased members) concerned;
	// empty for schema-wide findings.
	MemberID string
	// Rows names the rows involved as "table/key" (e.g.
	// "ledger_entries/3f0c…", "exchanges/…", "deletion_acks/<exchange>,<recipient>").
	Rows []string
	// Detail says what is wrong, with the numbers that disagree.
	Detail string
}

// InvariantStore reads the database for Verify. It must read one consistent,
// read-only snapshot (nothing it does may write, so it works on a hot
// standby), stream what it reads, and call found for every violation of
// every rule, in any order. It returns, per rule id, how many things the
// rule checked (InvariantRule.Counts).
type InvariantStore interface {
	CheckInvariants(ctx context.Context, found func(Violation) error) (checked map[string]int64, snapshot time.Time, err error)
}

// RuleReport is one rule's outcome.
type RuleReport struct {
	Rule InvariantRule
	// Checked counts what the rule looked at (Rule.Counts).
	Checked int64
	// Violations counts every violation found, shown or not.
	Violations int64
	// Shown are the first violations found, at most VerifyReport.MaxShown.
	Shown []Violation
}

// Passed reports whether the rule holds.
func (r RuleReport) Passed() bool { return r.Violations == 0 }

// VerifyReport is the outcome of one verification.
type VerifyReport struct {
	// Snapshot is the database time of the snapshot that was checked.
	Snapshot time.Time
	// MaxShown caps the violations kept per rule; all are counted.
	MaxShown int
	Rules    []RuleReport
}

// Passed reports whether every rule holds.
func (r VerifyReport) Passed() bool {
	for _, rr := range r.Rules {
		if !rr.Passed() {
			return false
		}
	}
	return true
}

// Broken counts the rules that do not hold.
func (r VerifyReport) Broken() int {
	n := 0
	for _, rr := range r.Rules {
		if !rr.Passed() {
			n++
		}
	}
	return n
}

// Verifier is `quid verify`: it checks the invariants on one snapshot of
// the store.
type Verifier struct {
	store InvariantStore
}

// NewVerifier wires verification to the store it reads.
func NewVerifier(store InvariantStore) *Verifier { return &Verifier{store: store} }

// Verify checks every invariant in InvariantRules on one snapshot and
// reports, per rule, what was checked and every violation (the first
// maxShown kept, all counted). Memory is bounded by the rule count times
// maxShown whatever the database holds. An error means the check could not
// run (connection, permissions), not that a rule is broken.
func (s *Verifier) Verify(ctx context.Context, maxShown int) (VerifyReport, error) {
	if maxShown < 0 {
		maxShown = 0
	}
	rep := VerifyReport{MaxShown: maxShown, Rules: make([]RuleReport, len(InvariantRules))}
	index := make(map[string]int, len(InvariantRules))
	for i, r := range InvariantRules {
		rep.Rules[i] = RuleReport{Rule: r}
		index[r.ID] = i
	}
	checked, snap, err := s.store.CheckInvariants(ctx, func(v Violation) error {
		i, ok := index[v.RuleID]
		if !ok {
			return fmt.Errorf("verify: violation of unknown rule %q", v.RuleID)
		}
		rr := &rep.Rules[i]
		rr.Violations++
		if len(rr.Shown) < maxShown {
			rr.Shown = append(rr.Shown, v)
		}
		return nil
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	rep.Snapshot = snap.UTC()
	for i := range rep.Rules {
		rep.Rules[i].Checked = checked[rep.Rules[i].Rule.ID]
	}
	return rep, nil
}
