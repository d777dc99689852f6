package domain

import (
	"sort"
	"time"
)

// GrantedCategories lists the categories that terms grant to recipient for
// purpose, sorted. Consent is per (category, purpose, recipient): a grant to
// another recipient or for another purpose grants nothing here.
func GrantedCategories(t Terms, recipientID, purpose string) []string {
	set := map[string]bool{}
	for _, g := range t.Grants() {
		if g.Recipient == recipientID && g.Purpose == purpose {
			set[g.Category] = true
		}
	}
	return sortedKeys(set)
}

// Disclose returns the values of the granted categories that the member has.
// A derived category is computed at now from its source and only the
// derived fact leaves: the source value is never included unless the source
// category itself is granted.
func (c Catalog) Disclose(granted []string, attributes map[string]any, now time.Time) map[string]any {
	out := map[string]any{}
	for _, key := range granted {
		cat, ok := c.categories[key]
		if !ok {
			continue
		}
		if cat.Derived != nil {
			if v, ok := c.Derive(key, attributes[cat.Derived.From], now); ok {
				out[key] = v
			}
			continue
		}
		if v, ok := attributes[key]; ok {
			out[key] = v
		}
	}
	return out
}

// DisclosedKeys lists the keys of a disclosure, sorted, for the access log.
func DisclosedKeys(values map[string]any) []string {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DeletionState is where a recipient's duty to delete stands at now:
// "deleted" once confirmed, "overdue" once its due time has passed, "due"
// until then. The overdue list in SQL (infra/postgres overdueAt) follows the
// same rule; a parity test pins the two together.
func DeletionState(due time.Time, confirmed *time.Time, now time.Time) string {
	switch {
	case confirmed != nil:
		return "deleted"
	case now.After(due):
		return "overdue"
	}
	return "due"
}

// ObjectedPurposes lists, in the order the terms name them, the purposes of
// t that the member objects to (GDPR Art. 21): a contract using any of them
// may not be joined, and an active exchange on it ends.
func ObjectedPurposes(t Terms, objected map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range t.Items {
		if objected[it.Purpose] && !seen[it.Purpose] {
			seen[it.Purpose] = true
			out = append(out, it.Purpose)
		}
	}
	return out
}
