//! UTC timestamps as text, once for Rust: the sidecar's `updated_at` and log lines (milliseconds)
//! and the backtester's messages (seconds). Howard Hinnant's `civil_from_days`; no date crate.

/// `YYYY-MM-DDTHH:MM:SS` of a millisecond timestamp (UTC, proleptic Gregorian), and the
/// milliseconds within the second.
fn civil(ms: i64) -> (String, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let text = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60);
    (text, ms.rem_euclid(1000))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a millisecond timestamp (the milliseconds dropped).
pub fn iso_seconds(ms: i64) -> String {
    format!("{}Z", civil(ms).0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a millisecond timestamp (the data layer's `updated_at` form).
pub fn iso_millis(ms: i64) -> String {
    let (text, milli) = civil(ms);
    format!("{text}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        assert_eq!(iso_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_seconds(1_741_914_123_456), "2025-03-14T01:02:03Z");
        assert_eq!(iso_millis(1_684_702_799_999), "2023-05-21T20:59:59.999Z");
        assert_eq!(iso_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        // before the epoch: floor, not truncation
        assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso_seconds(-86_400_000 * 365), "1969-01-01T00:00:00Z");
    }
}
