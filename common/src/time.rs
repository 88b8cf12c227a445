//! Wall-clock time as the pipeline stores it (milliseconds since the Unix epoch, UTC), and how
//! it is read from and written for people (ISO 8601).

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Now, in milliseconds since the Unix epoch; 0 if the clock is set before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// ISO 8601 to milliseconds since the epoch: RFC 3339, a date-time without offset (UTC), or a
/// date (midnight UTC).
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return millis(at).ok_or_else(|| format!("{text:?} is out of range"));
    }
    let local = text.trim().replacen(' ', "T", 1);
    let formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    formats
        .iter()
        .find_map(|format| PrimitiveDateTime::parse(&local, format).ok())
        .or_else(|| {
            Date::parse(&local, format_description!("[year]-[month]-[day]"))
                .ok()
                .map(Date::midnight)
        })
        .and_then(|at| millis(at.assume_utc()))
        .ok_or_else(|| {
            format!(
                "expected ISO 8601: 2026-11-20T12:00:00Z, 2026-11-20T12:00:00+01:00, 2026-11-20T12:00:00 \
                 (UTC) or 2026-11-20 (midnight UTC), got {text:?}"
            )
        })
}

/// RFC 3339 in UTC to the second (`2025-11-24T16:00:00Z`); the raw number for a time beyond
/// the calendar, so a corrupt timestamp still prints.
pub fn format_rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn millis(at: OffsetDateTime) -> Option<i64> {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_as_iso_8601_in_utc_unless_an_offset_is_given() {
        assert_eq!(parse_datetime("2025-11-24T16:00:00Z"), Ok(1_764_000_000_000));
        assert_eq!(parse_datetime("2025-11-24T17:00:00+01:00"), Ok(1_764_000_000_000));
        assert_eq!(parse_datetime("2025-11-24T16:00:00"), Ok(1_764_000_000_000));
        assert_eq!(parse_datetime("2025-11-24 16:00:00.250"), Ok(1_764_000_000_250));
        assert_eq!(parse_datetime("2025-11-24T16:00"), Ok(1_764_000_000_000));
        assert_eq!(parse_datetime("2025-11-24"), Ok(1_763_942_400_000));
        assert!(parse_datetime("yesterday").unwrap_err().contains("ISO 8601"));
        assert!(parse_datetime("2025-13-01").is_err());
    }

    #[test]
    fn times_print_as_rfc_3339_to_the_second() {
        assert_eq!(format_rfc3339(1_764_000_000_999), "2025-11-24T16:00:00Z");
        assert_eq!(format_rfc3339(i64::MAX), format!("{} ms", i64::MAX));
    }

    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(now_ms() > 1_764_000_000_000);
    }
}
