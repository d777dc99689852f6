package domain_test

import (
	"testing"

	"github.com/quidpro/quid/domain"
)

// Every kind of entry is a transaction whose postings sum to zero, on
// known accounts, and what it moves on the member's own accounts is what
// Balance.Apply moves (DESIGN.md rule 12).
func TestEveryKindOfEntryPostsABalancedTransaction(t *testing.T) {
	known := map[domain.Account]bool{}
	for _, a := range domain.Accounts {
		known[a] = true
	}
	for _, kind := range domain.EntryKinds {
		for _, points := range []int64{-250, -1, 1, 100, 1 << 40} {
			ps, err := domain.PostingsOf(kind, points)
			if err != nil {
				t.Fatalf("%s of %d: %v", kind, points, err)
			}
			var sum int64
			member := domain.Balance{}
			for _, p := range ps {
				if !known[p.Account] {
					t.Errorf("%s of %d posts to unknown account %q", kind, points, p.Account)
				}
				sum += p.Amount
				switch p.Account {
				case domain.AccountAvailable:
					member.Available += p.Amount
				case domain.AccountPending:
					member.Pending += p.Amount
				}
			}
			if sum != 0 || len(ps) < 2 {
				t.Errorf("%s of %d: %d postings summing to %d", kind, points, len(ps), sum)
			}
			start := domain.Balance{Available: 1 << 50, Pending: 1 << 50}
			after, err := start.Apply(kind, points)
			if err != nil {
				t.Fatal(err)
			}
			if after.Available-start.Available != member.Available || after.Pending-start.Pending != member.Pending {
				t.Errorf("%s of %d: Apply moves %+d/%+d, the postings %+d/%+d", kind, points,
					after.Available-start.Available, after.Pending-start.Pending, member.Available, member.Pending)
			}
			shown := domain.MemberPostings(ps)
			for i, p := range shown {
				if !p.Account.OfMember() || (i > 0 && p.Account == domain.AccountAvailable) {
					t.Errorf("%s of %d: the member is shown %v", kind, points, shown)
				}
			}
		}
	}
	if _, err := domain.PostingsOf("gift", 5); err == nil {
		t.Error("an unknown kind has postings")
	}
}
