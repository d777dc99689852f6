package postgres_test

import (
	"testing"

	"gorm.io/gorm"
)

// openRenewalWindow brings one exchange's expiry forward to the
// contract's notice from now, so that its renewal window opens now: a
// notice is always shorter than the duration, so a test cannot have the
// window open at the join.
func openRenewalWindow(t *testing.T, db *gorm.DB, exchangeID string) {
	t.Helper()
	err := db.Exec(`UPDATE exchanges e SET expires_at = clock_timestamp() + CAST(c.terms->>'renewal_notice' AS interval)
FROM contracts c WHERE c.id = e.contract_id AND e.id = ?
    AND e.expires_at > clock_timestamp() + CAST(c.terms->>'renewal_notice' AS interval)`, exchangeID).Error
	if err != nil {
		t.Fatalf("open the renewal window of %s: %v", exchangeID, err)
	}
}
