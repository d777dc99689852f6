package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/domain"
)

type tierDTO struct {
	Name      string `json:"name" validate:"required,max=100"`
	Threshold int64  `json:"threshold"`
	Benefits  string `json:"benefits" validate:"max=1000"`
}

// tiersIn is the body of PUT /v1/programme/tiers: the whole schedule each
// time (a new version replaces it).
type tiersIn struct {
	Window string    `json:"window" validate:"required"`
	Tiers  []tierDTO `json:"tiers" validate:"required,max=20,dive"`
}

type tiersDTO struct {
	Version   int       `json:"version"`
	Window    string    `json:"window"`
	Tiers     []tierDTO `json:"tiers"`
	CreatedAt string    `json:"created_at"`
}

func tiersOf(s domain.TierSchedule) tiersDTO {
	out := tiersDTO{Version: s.Version, Window: s.Window.String(), Tiers: make([]tierDTO, len(s.Tiers)), CreatedAt: timeText(s.CreatedAt)}
	for i, t := range s.Tiers {
		out.Tiers[i] = tierDTO(t)
	}
	return out
}

var errTiersNotSet = domain.NotFound("tiers-not-found", "the programme has no tiers yet: an admin sets them with PUT /v1/programme/tiers")

func (h *handlers) getTiers(c *fiber.Ctx) error {
	s, ok, err := h.svc.Tiers.Schedule(c.UserContext())
	if err != nil {
		return err
	}
	if !ok {
		return errTiersNotSet
	}
	return c.JSON(tiersOf(s))
}

func (h *handlers) putTiers(c *fiber.Ctx) error {
	var in tiersIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	w, err := domain.ParseDuration(in.Window)
	if err != nil {
		return domain.Invalid("/window", err.Error())
	}
	sched := domain.TierSchedule{Window: w, Tiers: make([]domain.Tier, len(in.Tiers))}
	for i, t := range in.Tiers {
		sched.Tiers[i] = domain.Tier(t)
	}
	out, err := h.svc.Tiers.PutTiers(c.UserContext(), principal(c), sched)
	if err != nil {
		return err
	}
	return c.JSON(tiersOf(out))
}

type tierRefDTO struct {
	Name     string `json:"name"`
	Benefits string `json:"benefits"`
}

type nextTierDTO struct {
	Name         string `json:"name"`
	Threshold    int64  `json:"threshold"`
	PointsNeeded int64  `json:"points_needed"`
}

// tierStandingDTO is where a member stands: the points earned in the
// window (from window_start to as_of), the tier they reach (null: none)
// and the next one (null: at the top).
type tierStandingDTO struct {
	Tier         *tierRefDTO  `json:"current"`
	PointsEarned int64        `json:"points_earned"`
	Window       string       `json:"window"`
	WindowStart  string       `json:"window_start"`
	AsOf         string       `json:"as_of"`
	Next         *nextTierDTO `json:"next"`
}

func (h *handlers) tierStanding(c *fiber.Ctx) (*tierStandingDTO, error) {
	sched, st, ok, err := h.svc.Tiers.Standing(c.UserContext(), principal(c))
	if err != nil || !ok {
		return nil, err
	}
	d := &tierStandingDTO{PointsEarned: st.Earned, Window: sched.Window.String(), WindowStart: timeText(st.WindowStart), AsOf: timeText(st.At)}
	if st.Tier != nil {
		d.Tier = &tierRefDTO{Name: st.Tier.Name, Benefits: st.Tier.Benefits}
	}
	if st.Next != nil {
		d.Next = &nextTierDTO{Name: st.Next.Name, Threshold: st.Next.Threshold, PointsNeeded: st.PointsNeeded}
	}
	return d, nil
}
