package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Tier is one level of the programme: a member holds it while the points
// they earned within the schedule's window reach Threshold.
type Tier struct {
	Name      string
	Threshold int64
	Benefits  string
}

// TierSchedule is the programme's tiers, lowest first, over one rolling
// window. Tiers describe standing only: they never change what a contract
// pays (a contract's reward is its terms', for every member).
type TierSchedule struct {
	Version   int
	Window    Duration
	Tiers     []Tier
	CreatedAt time.Time
}

// Limits of a tier schedule, as openapi.yaml states them.
const (
	MaxTiers             = 20
	MaxTierNameRunes     = 100
	MaxTierBenefitsRunes = 1000
	// MaxTierThreshold bounds a threshold: more points than a member can
	// earn in ten years from a thousand contracts paying MaxPoints a day
	// is no tier anyone reaches.
	MaxTierThreshold int64 = 1_000_000_000_000
)

// longestTierWindow bounds the window: a tier over more than ten years is
// no longer a rolling standing.
var longestTierWindow = Duration{Years: 10}

// ValidateTierSchedule reports every problem of s at once, at the JSON
// pointer of its field in PUT /v1/programme/tiers: a positive window of at
// most ten years; at most MaxTiers tiers; names of 1 to MaxTierNameRunes
// characters, not blank, unique regardless of case; thresholds from 1 to
// MaxTierThreshold, strictly increasing; benefits of at most
// MaxTierBenefitsRunes characters. No text may hold control characters or
// bidirectional overrides (as contract texts, hidesText). Names are
// trimmed of surrounding white space. An empty list is valid: no tiers.
func ValidateTierSchedule(s TierSchedule) (TierSchedule, error) {
	var v Violations
	if s.Window.IsZero() {
		v.Add("/window", "is required: the rolling window points earned are counted over, such as P12M")
	} else if s.Window.Exceeds(longestTierWindow) {
		v.Add("/window", "must be at most 10 years")
	}
	if len(s.Tiers) > MaxTiers {
		v.Add("/tiers", fmt.Sprintf("must hold at most %d tiers", MaxTiers))
	}
	out := s
	out.Tiers = make([]Tier, len(s.Tiers))
	seen := map[string]int{}
	for i, t := range s.Tiers {
		at := fmt.Sprintf("/tiers/%d", i)
		t.Name = strings.TrimSpace(t.Name)
		switch {
		case blank(t.Name) || utf8.RuneCountInString(t.Name) > MaxTierNameRunes:
			v.Add(at+"/name", fmt.Sprintf("must be 1 to %d characters, not only white space", MaxTierNameRunes))
		case hidesLine(t.Name):
			v.Add(at+"/name", "must not hold control characters or bidirectional overrides")
		default:
			key := strings.ToLower(t.Name)
			if first, dup := seen[key]; dup {
				v.Add(at+"/name", fmt.Sprintf("repeats the name of tier %d; tier names are unique", first))
			} else {
				seen[key] = i
			}
		}
		if t.Threshold < 1 || t.Threshold > MaxTierThreshold {
			v.Add(at+"/threshold", fmt.Sprintf("must be between 1 and %d points", MaxTierThreshold))
		} else if i > 0 && t.Threshold <= s.Tiers[i-1].Threshold {
			v.Add(at+"/threshold", fmt.Sprintf("must be above the threshold of tier %d (%d): tiers are listed lowest first", i-1, s.Tiers[i-1].Threshold))
		}
		if utf8.RuneCountInString(t.Benefits) > MaxTierBenefitsRunes {
			v.Add(at+"/benefits", fmt.Sprintf("must be at most %d characters", MaxTierBenefitsRunes))
		} else if hidesText(t.Benefits) {
			v.Add(at+"/benefits", "must not hold control characters or bidirectional overrides")
		}
		out.Tiers[i] = t
	}
	if err := v.Err(); err != nil {
		return TierSchedule{}, err
	}
	return out, nil
}

// TierStanding is where a member stands: the points they earned within
// the window ending at At, the tier those reach (nil: none) and the next
// tier up (nil: at the top) with the points still needed to reach it.
type TierStanding struct {
	Earned       int64
	WindowStart  time.Time
	At           time.Time
	Tier         *Tier
	Next         *Tier
	PointsNeeded int64
}

// WindowStart is the start of the window ending at now: points earned
// after it (strictly) count. PostgreSQL's interval arithmetic (AddTo with
// -1) in SQL computes the same instant: now - window.
func (s TierSchedule) WindowStart(now time.Time) time.Time { return s.Window.AddTo(now, -1) }

// Standing is the tier earned points reach, and the next one: the highest
// tier whose threshold is at most earned.
func (s TierSchedule) Standing(earned int64, now time.Time) TierStanding {
	st := TierStanding{Earned: earned, At: now, WindowStart: s.WindowStart(now)}
	for i := range s.Tiers {
		t := s.Tiers[i]
		if earned >= t.Threshold {
			st.Tier = &t
			continue
		}
		st.Next = &t
		st.PointsNeeded = t.Threshold - earned
		break
	}
	return st
}
