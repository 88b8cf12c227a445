//! Dates as the departments store and print them.
//!
//! Date math happens in Rust at apply time, so the SQL stays portable: days, months and ISO
//! weeks are stored as text that sorts chronologically (`2026-03-30`, `2026-03`, `2026-W14`), in
//! UTC.

use time::Date;

const MS_PER_DAY: i64 = 86_400_000;

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// What a date outside the calendar's range (years beyond ±9999) is stored and printed as, so a
/// corrupt timestamp cannot stop a consumer.
pub const OUT_OF_RANGE: &str = "out of range";

/// The date `days` after 1970-01-01.
fn date(days: i64) -> Option<Date> {
    let julian = i32::try_from(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
    Date::from_julian_day(julian).ok()
}

fn date_text(days: i64, text: impl FnOnce(Date) -> String) -> String {
    date(days).map_or_else(|| OUT_OF_RANGE.to_owned(), text)
}

/// The day, counted from 1970-01-01, of a UTC timestamp in milliseconds.
pub fn day_number(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (as `expected_delivery` is).
pub fn day(days: i64) -> String {
    date_text(days, |d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
}

/// `YYYY-MM-DD`, the UTC day of a timestamp in milliseconds.
pub fn utc_day(ms: i64) -> String {
    day(day_number(ms))
}

/// `YYYY-MM`, the UTC month of a timestamp in milliseconds.
pub fn utc_month(ms: i64) -> String {
    date_text(day_number(ms), |d| format!("{:04}-{:02}", d.year(), u8::from(d.month())))
}

/// `YYYY-Www`, the ISO 8601 week of a day counted from 1970-01-01: weeks run Monday to Sunday
/// and belong to the year holding their Thursday, so 2026-01-01 is in `2026-W01` and
/// 2027-01-01 (a Friday) is in `2026-W53`.
pub fn iso_week(days: i64) -> String {
    date_text(days, |d| {
        let (year, week, _) = d.to_iso_week_date();
        format!("{year:04}-W{week:02}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-30T00:00:00Z, a Monday.
    const MONDAY_2026_03_30: i64 = 20_542;

    #[test]
    fn days_and_months_are_utc() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(MONDAY_2026_03_30), "2026-03-30");
        let ms = MONDAY_2026_03_30 * MS_PER_DAY;
        assert_eq!(utc_day(ms), "2026-03-30");
        assert_eq!(utc_day(ms - 1), "2026-03-29", "the last millisecond of the day before");
        assert_eq!(utc_month(ms), "2026-03");
        assert_eq!(utc_month(ms + 2 * MS_PER_DAY), "2026-04");
        assert_eq!(utc_month(-1), "1969-12", "before the epoch rounds down, not towards zero");
    }

    #[test]
    fn iso_weeks_cross_year_boundaries() {
        assert_eq!(iso_week(MONDAY_2026_03_30), "2026-W14");
        assert_eq!(iso_week(MONDAY_2026_03_30 - 1), "2026-W13", "Sunday ends the week");
        assert_eq!(iso_week(MONDAY_2026_03_30 + 6), "2026-W14");
        // 2026-01-01 is a Thursday: week 1 of 2026.
        assert_eq!(iso_week(20_454), "2026-W01");
        // 2027-01-01 is a Friday: still the last week of 2026, which has 53.
        assert_eq!(iso_week(20_819), "2026-W53");
        // 2024-12-30 is a Monday: week 1 of 2025.
        assert_eq!(iso_week(20_087), "2025-W01");
    }

    #[test]
    fn dates_beyond_the_calendar_do_not_panic() {
        assert_eq!(day(i64::MAX), OUT_OF_RANGE);
        assert_eq!(utc_month(i64::MIN), OUT_OF_RANGE);
        assert_eq!(iso_week(100_000_000), OUT_OF_RANGE);
    }
}
