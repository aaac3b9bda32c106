//! HTTP and S3 timestamps: IMF-fixdate (`Last-Modified`, `Date`), its obsolete RFC 850 and asctime
//! forms (accepted in conditional headers), and ISO 8601 with milliseconds (S3 XML).
//!
//! Invariants: all times are UTC and counted from the Unix epoch; formatting never fails or panics for
//! any `u64` input; parsing accepts only dates from 1970-01-01 on (they must fit a `u64` of seconds)
//! and returns `None` for anything malformed or out of range. The civil-date arithmetic is
//! the proleptic Gregorian calendar, computed here without external crates.

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_SECOND: u64 = 1_000;
const SECONDS_PER_DAY: u64 = 86_400;
/// Days from 0000-03-01 (the start of the shifted proleptic calendar) to 1970-01-01.
const DAYS_FROM_CIVIL_ORIGIN_TO_UNIX_EPOCH: i64 = 719_468;
/// Days in one 400-year Gregorian cycle.
const DAYS_PER_400_YEARS: i64 = 146_097;
/// Largest year the parsers accept (four-digit years only).
const YEAR_MAX: i64 = 9_999;
/// RFC 850 two-digit years below this are 20xx, the rest 19xx.
const RFC850_CENTURY_PIVOT: u32 = 70;

const WEEKDAYS_SHORT: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WEEKDAYS_LONG: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    /// 0 = Sunday.
    weekday: usize,
}

/// Days since 1970-01-01 for a proleptic Gregorian date (month 1..=12, day 1..=31).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    let m = i64::from(month);
    let shifted_month = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_400_YEARS + day_of_era - DAYS_FROM_CIVIL_ORIGIN_TO_UNIX_EPOCH
}

/// (year, month, day) for a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + DAYS_FROM_CIVIL_ORIGIN_TO_UNIX_EPOCH;
    let era = z.div_euclid(DAYS_PER_400_YEARS);
    let day_of_era = z - era * DAYS_PER_400_YEARS; // 0..=146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both values are small and non-negative by construction.
    (year, month as u32, day as u32)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn civil_from_ms(ms: u64) -> Civil {
    let secs = ms / MS_PER_SECOND;
    let days = secs / SECONDS_PER_DAY;
    let secs_of_day = (secs % SECONDS_PER_DAY) as u32;
    // u64::MAX / 86_400_000 fits comfortably in an i64.
    let days = days as i64;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: secs_of_day / 3600,
        minute: secs_of_day / 60 % 60,
        second: secs_of_day % 60,
        millis: (ms % MS_PER_SECOND) as u32,
        // 1970-01-01 was a Thursday (4).
        weekday: ((days + 4) % 7) as usize,
    }
}

/// IMF-fixdate for a time in milliseconds since the epoch: `Mon, 01 Jan 2024 00:00:00 GMT`.
/// Sub-second precision is truncated, as HTTP dates have whole seconds.
pub fn http_date(ms: u64) -> String {
    let c = civil_from_ms(ms);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS_SHORT[c.weekday],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// ISO 8601 UTC with milliseconds, as S3 writes `LastModified` in XML: `2024-01-01T00:00:00.000Z`.
pub fn iso8601_ms(ms: u64) -> String {
    let c = civil_from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Parses an HTTP date (RFC 9110 §5.6.7) into seconds since the epoch. Accepts IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`) forms. The weekday name must be a valid one but is not
/// checked against the date. Returns `None` when malformed or before 1970.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    parse_imf_fixdate(s)
        .or_else(|| parse_rfc850(s))
        .or_else(|| parse_asctime(s))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let mut parts = s.split(' ');
    let weekday = parts.next()?.strip_suffix(',')?;
    if !WEEKDAYS_SHORT.contains(&weekday) {
        return None;
    }
    let day = fixed_digits(parts.next()?, 2)?;
    let month = month_number(parts.next()?)?;
    let year = i64::from(fixed_digits(parts.next()?, 4)?);
    let (hour, minute, second) = parse_time_of_day(parts.next()?)?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    to_epoch_seconds(year, month, day, hour, minute, second)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn parse_rfc850(s: &str) -> Option<u64> {
    let mut parts = s.split(' ');
    let weekday = parts.next()?.strip_suffix(',')?;
    if !WEEKDAYS_LONG.contains(&weekday) {
        return None;
    }
    let mut date = parts.next()?.split('-');
    let day = fixed_digits(date.next()?, 2)?;
    let month = month_number(date.next()?)?;
    let yy = fixed_digits(date.next()?, 2)?;
    if date.next().is_some() {
        return None;
    }
    let year = if yy < RFC850_CENTURY_PIVOT {
        2000 + i64::from(yy)
    } else {
        1900 + i64::from(yy)
    };
    let (hour, minute, second) = parse_time_of_day(parts.next()?)?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    to_epoch_seconds(year, month, day, hour, minute, second)
}

/// `Sun Nov  6 08:49:37 1994` (the day is space-padded; a zero-padded day is accepted too).
fn parse_asctime(s: &str) -> Option<u64> {
    let mut parts = s.split_ascii_whitespace();
    let weekday = parts.next()?;
    if !WEEKDAYS_SHORT.contains(&weekday) {
        return None;
    }
    let month = month_number(parts.next()?)?;
    let day_text = parts.next()?;
    if day_text.is_empty() || day_text.len() > 2 {
        return None;
    }
    let day = fixed_digits(day_text, day_text.len())?;
    let (hour, minute, second) = parse_time_of_day(parts.next()?)?;
    let year = i64::from(fixed_digits(parts.next()?, 4)?);
    if parts.next().is_some() {
        return None;
    }
    to_epoch_seconds(year, month, day, hour, minute, second)
}

/// `hh:mm:ss`, two digits each.
fn parse_time_of_day(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.split(':');
    let hour = fixed_digits(parts.next()?, 2)?;
    let minute = fixed_digits(parts.next()?, 2)?;
    let second = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() {
        return None;
    }
    Some((hour, minute, second))
}

/// Exactly `len` ASCII digits as a number.
fn fixed_digits(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

fn month_number(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == s).map(|i| i as u32 + 1)
}

fn to_epoch_seconds(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<u64> {
    // A leap second (60) is accepted, as IMF allows it; it lands on the next minute's :00.
    if !(1970..=YEAR_MAX).contains(&year)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(
        days * SECONDS_PER_DAY
            + u64::from(hour) * 3600
            + u64::from(minute) * 60
            + u64::from(second),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_1_2024_MS: u64 = 1_704_067_200_000;

    #[test]
    fn formats_known_instants() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(JAN_1_2024_MS), "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(784_111_777_999), "Sun, 06 Nov 1994 08:49:37 GMT");
        // Leap day and end of a leap year.
        assert_eq!(http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            http_date(1_735_689_599_000),
            "Tue, 31 Dec 2024 23:59:59 GMT"
        );
        assert_eq!(
            http_date(4_102_444_800_000),
            "Fri, 01 Jan 2100 00:00:00 GMT"
        );
    }

    #[test]
    fn iso8601_has_milliseconds() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(JAN_1_2024_MS), "2024-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(JAN_1_2024_MS + 1), "2024-01-01T00:00:00.001Z");
        assert_eq!(iso8601_ms(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn formatting_never_panics_at_extremes() {
        let s = http_date(u64::MAX);
        assert!(s.ends_with(" GMT"));
        let s = iso8601_ms(u64::MAX);
        assert!(s.ends_with('Z'));
    }

    #[test]
    fn parses_all_three_forms() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov 06 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Mon, 01 Jan 2024 00:00:00 GMT"),
            Some(1_704_067_200)
        );
        assert_eq!(
            parse_http_date("Thursday, 01-Jan-15 00:00:00 GMT"),
            Some(1_420_070_400)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    }

    #[test]
    fn round_trips_every_day_over_centuries() {
        // Every day from 1970 to ~2130 at a varying time of day.
        for day in 0..60_000u64 {
            let secs = day * SECONDS_PER_DAY + (day * 7919) % SECONDS_PER_DAY;
            let text = http_date(secs * 1000);
            assert_eq!(parse_http_date(&text), Some(secs), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            "",
            "garbage",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 November 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2023 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 23:59:59 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 94",
            "Sun Nov 123 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now_ms() > JAN_1_2024_MS);
    }
}
