package domain

import "time"

// latestZone is the last time zone on Earth to start a calendar day
// (UTC−12, Baker Island): a date has begun everywhere once it has begun there.
var latestZone = time.FixedZone("UTC-12", -12*60*60)

// AgeAtLeast reports whether someone born on the calendar date born is at
// least years old at the instant now, without knowing their time zone.
//
// Age rule: a person is N years old only once their Nth birthday has begun
// in every time zone on Earth, that is once the birthday has begun in
// UTC−12 (at 12:00 UTC on that date). A derived age fact therefore never
// calls a minor an adult wherever the member lives; it may say "not yet"
// for up to a day after the birthday began where they are.
//
// 29 February rule: someone born on 29 February has their birthday on
// 1 March in years that are not leap years (the rule of most jurisdictions,
// e.g. England and Wales, New Zealand, Hong Kong), so they turn 18 on
// 1 March of that year, never on 28 February.
//
// Only the year, month and day of born are used; time.Date normalises
// 29 February of a common year to 1 March, which is the rule above.
func AgeAtLeast(born time.Time, years int, now time.Time) bool {
	y, m, d := born.Date()
	birthday := time.Date(y+years, m, d, 0, 0, 0, 0, latestZone)
	return !now.Before(birthday)
}
