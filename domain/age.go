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
// Only the year, month and day of born are used.
func AgeAtLeast(born time.Time, years int, now time.Time) bool {
	y, m, d := born.Date()
	by := y + years
	if m == time.February && d == 29 && !isLeap(by) {
		m, d = time.March, 1
	}
	ny, nm, nd := now.In(latestZone).Date()
	if ny != by {
		return ny > by
	}
	if nm != m {
		return nm > m
	}
	return nd >= d
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
