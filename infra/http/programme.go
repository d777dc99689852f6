package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

type authorityDTO struct {
	Name         string `json:"name" validate:"required,max=200"`
	ComplaintURL string `json:"complaint_url" validate:"required,max=2000"`
}

type moneyAmountDTO struct {
	Currency string `json:"currency" validate:"required"`
	Amount   string `json:"amount" validate:"required"`
}

// programmeIn is the body of PUT /v1/programme: every field, each time
// (a new version replaces the whole identity).
type programmeIn struct {
	LegalName            string          `json:"legal_name" validate:"required,max=200"`
	Address              string          `json:"address" validate:"required,max=500"`
	ContactEmail         string          `json:"contact_email" validate:"required"`
	DPOContact           string          `json:"dpo_contact" validate:"required,max=500"`
	SupervisoryAuthority *authorityDTO   `json:"supervisory_authority" validate:"required"`
	PointValue           *moneyAmountDTO `json:"point_value" validate:"required"`
	Jurisdictions        []string        `json:"jurisdictions" validate:"required,max=300"`
}

type programmeDTO struct {
	Version              int            `json:"version"`
	LegalName            string         `json:"legal_name"`
	Address              string         `json:"address"`
	ContactEmail         string         `json:"contact_email"`
	DPOContact           string         `json:"dpo_contact"`
	SupervisoryAuthority authorityDTO   `json:"supervisory_authority"`
	PointValue           moneyAmountDTO `json:"point_value"`
	Jurisdictions        []string       `json:"jurisdictions"`
	CreatedAt            string         `json:"created_at"`
}

func programmeOf(p domain.Programme) programmeDTO {
	return programmeDTO{Version: p.Version, LegalName: p.LegalName, Address: p.Address, ContactEmail: p.ContactEmail,
		DPOContact: p.DPOContact, SupervisoryAuthority: authorityDTO{p.AuthorityName, p.ComplaintURL},
		PointValue: moneyAmountDTO{p.PointValue.Currency, p.PointValue.Amount}, Jurisdictions: nonNil(p.Jurisdictions),
		CreatedAt: timeText(p.CreatedAt)}
}

var errProgrammeNotSet = domain.NotFound("programme-not-found", "no programme identity is set yet: an admin sets it with PUT /v1/programme")

func (h *handlers) getProgramme(c *fiber.Ctx) error {
	p, ok, err := h.svc.Contracts.Programme(c.UserContext())
	if err != nil {
		return err
	}
	if !ok {
		return errProgrammeNotSet
	}
	return c.JSON(programmeOf(p))
}

func (h *handlers) putProgramme(c *fiber.Ctx) error {
	var in programmeIn
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := h.svc.Contracts.PutProgramme(c.UserContext(), principal(c), app.ProgrammeInput{LegalName: in.LegalName,
		Address: in.Address, ContactEmail: in.ContactEmail, DPOContact: in.DPOContact,
		AuthorityName: in.SupervisoryAuthority.Name, ComplaintURL: in.SupervisoryAuthority.ComplaintURL,
		PointValue: domain.PointValue{Currency: in.PointValue.Currency, Amount: in.PointValue.Amount}, Jurisdictions: in.Jurisdictions})
	if err != nil {
		return err
	}
	return c.JSON(programmeOf(p))
}
