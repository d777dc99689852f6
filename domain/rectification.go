package domain

import "sort"

// Rectified is every category whose disclosed value a change of the stored
// attributes changed may have changed: the changed categories themselves
// and every derived category computed from one of them (a new birthdate
// can change demographic.age_over_18). Sorted, without duplicates.
func (c Catalog) Rectified(changed []string) []string {
	seen := map[string]bool{}
	for _, k := range changed {
		seen[k] = true
	}
	for _, cat := range c.categories {
		if cat.Derived != nil && seen[cat.Derived.From] {
			seen[cat.Key] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
