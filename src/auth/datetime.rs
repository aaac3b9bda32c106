//! Request timestamps: parsing `X-Amz-Date` (ISO 8601 basic, `YYYYMMDDTHHMMSSZ`) and the RFC 1123
//! `Date` header, and formatting times back in those forms.
//!
//! Invariants: only UTC is accepted; every field is range-checked (no Feb 30, no hour 24); times
//! before 1970 are rejected; parsing never panics on client input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970, fields already validated).
fn days_since_epoch(y: u64, m: u64, d: u64) -> u64 {
    let mut days = 0;
    for year in 1970..y {
        days += if is_leap(year) { 366 } else { 365 };
    }
    for month in 1..m {
        days += days_in_month(y, month);
    }
    days + d - 1
}

/// Validates the fields and converts them to a `SystemTime`.
fn from_fields(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64) -> Option<SystemTime> {
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) {
        return None;
    }
    if d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let secs = days_since_epoch(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    from_fields(
        digits(s.get(0..4)?)?,
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

/// Parses an RFC 1123 date (`Fri, 24 May 2013 00:00:00 GMT`); the weekday is optional and not checked.
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut parts: Vec<&str> = s.split_ascii_whitespace().collect();
    if parts.first().is_some_and(|p| p.ends_with(',')) {
        parts.remove(0);
    }
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "GMT" && *zone != "UTC" {
        return None;
    }
    let mo = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, mi, sec] = hms.as_slice() else {
        return None;
    };
    if day.len() > 2 || year.len() != 4 || h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return None;
    }
    from_fields(
        digits(year)?,
        mo,
        digits(day)?,
        digits(h)?,
        digits(mi)?,
        digits(sec)?,
    )
}

/// Splits a time into (year, month, day, hour, minute, second); times before 1970 clamp to the epoch.
fn to_fields(t: SystemTime) -> (u64, u64, u64, u64, u64, u64) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut days = secs / 86_400;
    let rem = secs % 86_400;
    let mut y = 1970;
    loop {
        let len = if is_leap(y) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        y += 1;
    }
    let mut mo = 1;
    while days >= days_in_month(y, mo) {
        days -= days_in_month(y, mo);
        mo += 1;
    }
    (y, mo, days + 1, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = to_fields(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form S3 uses in `ServerTime` / `RequestTime` error fields.
pub(crate) fn format_iso8601(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = to_fields(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn amz_date_known_values() {
        assert_eq!(unix(parse_amz_date("19700101T000000Z").unwrap()), 0);
        assert_eq!(
            unix(parse_amz_date("20130524T000000Z").unwrap()),
            1_369_353_600
        );
        assert_eq!(
            unix(parse_amz_date("20261125T143053Z").unwrap()),
            1_795_617_053
        );
        assert_eq!(
            unix(parse_amz_date("20000229T235959Z").unwrap()),
            951_868_799
        );
    }

    #[test]
    fn amz_date_rejects_garbage() {
        for bad in [
            "",
            "20130524T000000",
            "20130524 000000Z",
            "2013052AT000000Z",
            "20130230T000000Z",
            "20130524T240000Z",
            "20130524T006000Z",
            "19690101T000000Z",
            "+0130524T000000Z",
            "20130524T000000Zx",
            "2013-05-24T00:00:00Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn http_date_forms() {
        let t = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").unwrap();
        assert_eq!(unix(t), 1_369_353_600);
        assert_eq!(parse_http_date("24 May 2013 00:00:00 GMT"), Some(t));
        assert!(parse_http_date("Fri, 24 Foo 2013 00:00:00 GMT").is_none());
        assert!(parse_http_date("Fri, 24 May 2013 00:00:00 PST").is_none());
        assert!(parse_http_date("Fri, 24 May 2013 00:00 GMT").is_none());
        assert!(parse_http_date("Fri, 31 Jun 2013 00:00:00 GMT").is_none());
    }

    #[test]
    fn formatting_round_trips() {
        for s in [
            "20130524T000000Z",
            "20261125T143053Z",
            "20241231T235959Z",
            "20000229T120000Z",
        ] {
            let t = parse_amz_date(s).unwrap();
            assert_eq!(format_amz_date(t), s);
        }
        let t = parse_amz_date("20261125T143053Z").unwrap();
        assert_eq!(format_iso8601(t), "2026-11-25T14:30:53Z");
    }
}
