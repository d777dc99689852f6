package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"

	"github.com/quidpro/quid/app"
)

// dueStore is an AccrualStore over a fixed set of due members that counts
// how often each is accrued; members in locked are held by another
// transaction, so they are skipped and stay due.
type dueStore struct {
	mu      sync.Mutex
	due     []string
	locked  map[string]bool
	accrued map[string]int
	lists   int
}

func (s *dueStore) DueMembers(_ context.Context, after string, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	if s.lists > 10 {
		return nil, errors.New("listed due members over and over")
	}
	var out []string
	for _, m := range s.due {
		if m > after && len(out) < limit && s.accrued[m] == 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *dueStore) AccrueMembers(_ context.Context, members []string) (app.AccrualResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r app.AccrualResult
	for _, m := range members {
		if !s.locked[m] {
			s.accrued[m]++
			r.Members++
			r.Credits++
		}
	}
	return r, nil
}

func TestAccrualPassPagesThroughEveryDueMemberOnce(t *testing.T) {
	t.Parallel()
	// More members than one list holds (BatchSize × DueListBatches), so the
	// pass lists three times, each after the last member of the one before;
	// every other member is locked by someone else and stays due, and the
	// pass leaves it to the next one rather than listing it again.
	s := &dueStore{accrued: map[string]int{}, locked: map[string]bool{}}
	n := 2*2*app.DueListBatches + 5
	for i := range n {
		s.due = append(s.due, fmt.Sprintf("m%05d", i))
		if i%2 == 0 {
			s.locked[s.due[i]] = true
		}
	}
	sort.Strings(s.due)
	want := n - len(s.locked)
	runner := app.NewAccrual(s, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runner.BatchSize, runner.Workers = 2, 3
	r, err := runner.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Members != want || r.Credits != want {
		t.Fatalf("pass reported %+v, want %d members", r, want)
	}
	for _, m := range s.due {
		if got := s.accrued[m]; got != 1 && !s.locked[m] {
			t.Errorf("%s accrued %d times, want once", m, got)
		}
	}
	if s.lists != 3 {
		t.Errorf("listed due members %d times, want 3", s.lists)
	}
}
