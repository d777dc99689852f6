package http

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/quidpro/quid/app"
	"github.com/quidpro/quid/domain"
)

// noticeDTO is the Notice of Financial Incentive of one published version
// (CCPA §1798.125(b); Cal. Code Regs. tit. 11 §7016), in the five parts
// §7016(b) lists. Every word of it is derived from the published terms
// (statementOf over app.Contracts.Notice), never typed by a marketer, so it
// cannot disagree with them; it changes only when the terms do, which for a
// published version is never (a new version is a new notice).
type noticeDTO struct {
	ContractID   string          `json:"contract_id"`
	FamilyID     string          `json:"family_id"`
	Version      int             `json:"version"`
	Title        string          `json:"title"`
	TermsHash    string          `json:"terms_hash"`
	PublishedAt  string          `json:"published_at"`
	PublishedOn  string          `json:"published_on"`
	StatementURL string          `json:"statement_url"`
	Controller   *stmtController `json:"controller"`
	// Summary is §7016(b)(1): a succinct summary of the incentive.
	Summary noticeSummary `json:"summary"`
	// MaterialTerms is §7016(b)(2): the material terms, with the categories
	// of personal information the incentive implicates.
	MaterialTerms noticeTerms `json:"material_terms"`
	// OptIn is §7016(b)(3): how to opt in.
	OptIn noticeHow `json:"opt_in"`
	// Withdrawal is §7016(b)(4): the right to withdraw at any time, and how.
	Withdrawal noticeHow `json:"withdrawal"`
	// Value is §7016(b)(5): why the incentive is reasonably related to the
	// value of the data, with the good-faith estimate and its method.
	Value noticeValue `json:"value"`
}

type noticeSummary struct {
	Plain string `json:"plain"`
}

type noticeCategory struct {
	Key          string `json:"key"`
	Label        string `json:"label"`
	Description  string `json:"description"`
	ExamplePlain string `json:"example_plain"`
	Sensitive    bool   `json:"sensitive"`
}

type noticeTerms struct {
	Categories       []noticeCategory       `json:"categories"`
	PurposeLabels    []string               `json:"purpose_labels"`
	Recipients       []stmtRecipientSummary `json:"recipients"`
	Reward           stmtReward             `json:"reward"`
	RewardValue      *rewardValueDTO        `json:"reward_value"`
	RewardValuePlain *string                `json:"reward_value_plain"`
	DurationPlain    string                 `json:"duration_plain"`
	RetentionPlain   string                 `json:"retention_plain"`
	AgeRule          stmtAgeRule            `json:"age_rule"`
	LegalBasis       stmtLegalBasis         `json:"legal_basis"`
}

// noticeHow is a step the member takes: in words, and the call that does it.
type noticeHow struct {
	Plain string `json:"plain"`
	Call  string `json:"call"`
}

type noticeValue struct {
	Plain       string            `json:"plain"`
	Estimate    *valueEstimateDTO `json:"estimate"`
	Method      *string           `json:"method"`
	MethodLabel *string           `json:"method_label"`
	// Explanation is the brand's own words (value_explanation), the one
	// free text in the notice besides the title: pages quote it as such.
	Explanation      *string `json:"explanation"`
	RewardValuePlain *string `json:"reward_value_plain"`
}

// noticeOf is the notice of a published version, from its statement.
func noticeOf(st app.Statement) noticeDTO {
	d := statementOf(st)
	c := st.Contract
	n := noticeDTO{ContractID: d.ContractID, FamilyID: d.FamilyID, Version: d.Version, Title: d.Title,
		StatementURL: "/v1/contracts/" + c.ID() + "/transparency", Controller: d.Controller}
	if d.TermsHash != nil {
		n.TermsHash = *d.TermsHash
	}
	if at := c.PublishedAt(); at != nil {
		n.PublishedAt, n.PublishedOn = timeText(*at), humanDate(*at)
	}
	brand := "The brand"
	if d.Controller != nil {
		brand = d.Controller.LegalName
	}

	var labels []string
	seenCat, seenPur := map[string]bool{}, map[string]bool{}
	mt := noticeTerms{Categories: []noticeCategory{}, PurposeLabels: []string{}, Recipients: d.Recipients, Reward: d.Reward,
		RewardValue: d.RewardValue, RewardValuePlain: d.RewardValuePlain, DurationPlain: d.DurationPlain,
		RetentionPlain: d.RetentionPlain, AgeRule: d.AgeRule, LegalBasis: d.LegalBasis}
	for _, it := range d.Items {
		if !seenCat[it.Category.Key] {
			seenCat[it.Category.Key] = true
			mt.Categories = append(mt.Categories, noticeCategory{it.Category.Key, it.Category.Label, it.Category.Description,
				it.Category.ExamplePlain, it.Category.Sensitive})
			labels = append(labels, it.Category.Label)
		}
		if !seenPur[it.Purpose.Key] {
			seenPur[it.Purpose.Key] = true
			mt.PurposeLabels = append(mt.PurposeLabels, it.Purpose.Label)
		}
	}
	n.MaterialTerms = mt

	summary := fmt.Sprintf("%s offers you a reward for sharing personal data: %s In return you share %s", brand, d.Reward.Plain,
		lowerList(labels))
	if len(d.Recipients) > 0 {
		names := make([]string, 0, len(d.Recipients))
		for _, r := range d.Recipients {
			names = append(names, r.Name)
		}
		summary += " with " + strings.Join(names, ", ")
	}
	summary += " for " + lowerList(mt.PurposeLabels) + "."
	if d.RewardValuePlain != nil {
		summary += " " + *d.RewardValuePlain
	}
	n.Summary = noticeSummary{Plain: summary}

	n.OptIn = noticeHow{Plain: "Joining is your choice and nothing is shared until you do: read these terms and the statement, then join this offer " +
		"in the app. Your consent is recorded with a receipt that carries the fingerprint of these exact terms (" + n.TermsHash + "). " +
		"This notice describes these terms for as long as anyone holds them: once the brand retires them, they are closed to new members " +
		"and the app offers the version that replaced them, with its own notice.",
		Call: "POST /v1/me/exchanges (contract_id " + c.ID() + ")"}
	n.Withdrawal = noticeHow{Plain: "Withdrawing costs nothing: cancel the exchange in the app. " + d.OnCancellation, Call: "DELETE /v1/me/exchanges/{id}"}

	v := noticeValue{MethodLabel: d.ValueMethodLabel, Method: d.ValueMethod, Explanation: d.ValueExplanation,
		Estimate: d.ValueEstimate, RewardValuePlain: d.RewardValuePlain}
	switch {
	case d.ValuePlain != nil && d.RewardValuePlain != nil:
		v.Plain = *d.ValuePlain + " " + *d.RewardValuePlain + " The reward is offered in exchange for that value: it is what " + brand +
			" pays for the data, set against what the data is worth to it."
	case d.ValuePlain != nil:
		v.Plain = *d.ValuePlain
	default:
		v.Plain = "No estimate of the value of your data was published with these terms."
	}
	n.Value = v
	return n
}

// lowerList joins labels in a sentence: "a, b and c".
func lowerList(xs []string) string {
	switch len(xs) {
	case 0:
		return "no data"
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

//go:embed notice.html
var noticeHTML string

var noticeTemplate = template.Must(template.New("notice").Funcs(plainTemplateFuncs).Parse(noticeHTML))

// notice is GET /v1/contracts/{id}/notice: public, HTML or JSON by Accept,
// kept in the response cache like the statement. A draft has no notice.
func (h *handlers) notice(c *fiber.Ctx) error {
	id, err := idParam(c, domain.ErrContractNotFound)
	if err != nil {
		return err
	}
	html := wantsHTML(c)
	key := "notice|" + id + "|" + map[bool]string{true: "html", false: "json"}[html]
	return h.cache.serve(c, key, func() (cachedResponse, bool, error) {
		st, err := h.svc.Contracts.Notice(c.UserContext(), id)
		if err != nil {
			return cachedResponse{}, false, err
		}
		dto := noticeOf(st)
		// The notice of a version never changes: its terms are frozen.
		r := cachedResponse{cacheControl: "public, max-age=300, must-revalidate", contentType: fiber.MIMEApplicationJSON}
		if html {
			var buf bytes.Buffer
			if err := noticeTemplate.Execute(&buf, dto); err != nil {
				return cachedResponse{}, false, err
			}
			r.body, r.contentType = buf.Bytes(), fiber.MIMETextHTMLCharsetUTF8
		} else if r.body, err = jsonMarshal(dto); err != nil {
			return cachedResponse{}, false, err
		}
		return r, true, nil
	})
}
