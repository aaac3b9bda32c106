//! Timestamps, the one calendar of the crate: HTTP dates (IMF-fixdate for `Last-Modified` and
//! `Date`; the obsolete RFC 850 and asctime forms accepted in requests), SigV4's `X-Amz-Date`
//! (`20130524T000000Z`), and ISO 8601 as S3 writes it in XML (`2024-01-01T00:00:00.000Z`) and in
//! error fields (`2024-01-01T00:00:00Z`).
//!
//! Invariants:
//! - all times are UTC, counted in seconds (or where the name says so, milliseconds) from the Unix
//!   epoch; [`system_time`] and [`unix_secs`] convert for code that works with `SystemTime`;
//! - formatting never fails or panics for any `u64` input;
//! - parsing accepts only dates from 1970-01-01 to 9999-12-31 with every field in range (no
//!   Feb 30, no hour 24, no leap second 60: Unix time has none) and returns `None` for anything
//!   else, never panicking on client input;
//! - [`parse_http_date`] accepts exactly the three forms of RFC 9110 §5.6.7, case-sensitively,
//!   with single spaces and nothing before or after; a day name must be the right one for its
//!   form (`Sun` in IMF-fixdate and asctime, `Sunday` in RFC 850) but is not checked against the
//!   date, which is authoritative.
//!
//! The civil-date arithmetic is the proleptic Gregorian calendar (Howard Hinnant's
//! `days_from_civil` / `civil_from_days`), computed here without external crates.

use crate::clock::now_ms;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MS_PER_SECOND: u64 = 1_000;
const SECONDS_PER_DAY: u64 = 86_400;
/// Days from 0000-03-01 (the start of the shifted proleptic calendar) to 1970-01-01.
const DAYS_FROM_CIVIL_ORIGIN_TO_UNIX_EPOCH: i64 = 719_468;
/// Days in one 400-year Gregorian cycle.
const DAYS_PER_400_YEARS: i64 = 146_097;
/// Smallest and largest years the parsers accept (the epoch; four-digit years).
const YEAR_MIN: i64 = 1_970;
const YEAR_MAX: i64 = 9_999;
/// RFC 9110 §5.6.7: an RFC 850 two-digit year that would be more than this many years in the
/// future is the most recent past year with those digits.
const RFC850_FUTURE_YEARS_MAX: i64 = 50;

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

/// A broken-down UTC time, whole seconds.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
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

fn civil_from_secs(secs: u64) -> Civil {
    // u64::MAX / 86_400 fits comfortably in an i64.
    let days = (secs / SECONDS_PER_DAY) as i64;
    let secs_of_day = (secs % SECONDS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: secs_of_day / 3600,
        minute: secs_of_day / 60 % 60,
        second: secs_of_day % 60,
        // 1970-01-01 was a Thursday (4).
        weekday: ((days + 4) % 7) as usize,
    }
}

// ---------------------------------------------------------------------------------------------
// Clock and conversions
// ---------------------------------------------------------------------------------------------

/// Whole seconds since the epoch of `t` (times before 1970 clamp to 0).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The `SystemTime` `secs` seconds after the epoch.
pub(crate) fn system_time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// IMF-fixdate for a time in milliseconds since the epoch: `Mon, 01 Jan 2024 00:00:00 GMT`.
/// Sub-second precision is truncated, as HTTP dates have whole seconds.
pub(crate) fn http_date(ms: u64) -> String {
    let c = civil_from_secs(ms / MS_PER_SECOND);
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
pub(crate) fn iso8601_ms(ms: u64) -> String {
    let c = civil_from_secs(ms / MS_PER_SECOND);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ms % MS_PER_SECOND
    )
}

/// ISO 8601 UTC in whole seconds, the form S3 uses in `ServerTime` / `RequestTime` error fields:
/// `2024-01-01T00:00:00Z`.
pub(crate) fn iso8601_secs(secs: u64) -> String {
    let c = civil_from_secs(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// SigV4's `X-Amz-Date` (ISO 8601 basic): `20130524T000000Z`.
pub(crate) fn amz_date(secs: u64) -> String {
    let c = civil_from_secs(secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Parses an `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`, exactly) into seconds since the epoch.
pub(crate) fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    to_epoch_seconds(
        i64::from(fixed_digits(s.get(0..4)?, 4)?),
        fixed_digits(s.get(4..6)?, 2)?,
        fixed_digits(s.get(6..8)?, 2)?,
        (
            fixed_digits(s.get(9..11)?, 2)?,
            fixed_digits(s.get(11..13)?, 2)?,
            fixed_digits(s.get(13..15)?, 2)?,
        ),
    )
}

/// Parses an HTTP date (RFC 9110 §5.6.7) into seconds since the epoch: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`, its
/// two-digit year read relative to the current year) or asctime (`Sun Nov  6 08:49:37 1994`).
/// Returns `None` when malformed, out of range, or before 1970.
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    parse_http_date_at(s, now_ms() / MS_PER_SECOND)
}

/// [`parse_http_date`] with the clock (seconds since the epoch) the RFC 850 year rule uses.
fn parse_http_date_at(s: &str, now_secs: u64) -> Option<u64> {
    parse_imf_fixdate(s)
        .or_else(|| parse_rfc850(s, now_secs))
        .or_else(|| parse_asctime(s))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let mut parts = s.split(' ');
    day_name(parts.next()?.strip_suffix(',')?, &WEEKDAYS_SHORT)?;
    let day = fixed_digits(parts.next()?, 2)?;
    let month = month_number(parts.next()?)?;
    let year = i64::from(fixed_digits(parts.next()?, 4)?);
    let time = parse_time_of_day(parts.next()?)?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    to_epoch_seconds(year, month, day, time)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn parse_rfc850(s: &str, now_secs: u64) -> Option<u64> {
    let mut parts = s.split(' ');
    day_name(parts.next()?.strip_suffix(',')?, &WEEKDAYS_LONG)?;
    let mut date = parts.next()?.split('-');
    let day = fixed_digits(date.next()?, 2)?;
    let month = month_number(date.next()?)?;
    let two_digit_year = fixed_digits(date.next()?, 2)?;
    if date.next().is_some() {
        return None;
    }
    let time = parse_time_of_day(parts.next()?)?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    let year = rfc850_year(two_digit_year, civil_from_secs(now_secs).year);
    to_epoch_seconds(year, month, day, time)
}

/// The full year of an RFC 850 two-digit year: the year with those last two digits that is at
/// most [`RFC850_FUTURE_YEARS_MAX`] years after `current_year` and less than a century before
/// that bound (RFC 9110 §5.6.7).
fn rfc850_year(two_digits: u32, current_year: i64) -> i64 {
    let latest = current_year + RFC850_FUTURE_YEARS_MAX;
    let candidate = latest - latest.rem_euclid(100) + i64::from(two_digits);
    if candidate > latest {
        candidate - 100
    } else {
        candidate
    }
}

/// `Sun Nov  6 08:49:37 1994`: fixed columns; the day is two digits or a space and one digit.
fn parse_asctime(s: &str) -> Option<u64> {
    const LEN: usize = "Sun Nov  6 08:49:37 1994".len();
    let b = s.as_bytes();
    if b.len() != LEN || !s.is_ascii() || [b[3], b[7], b[10], b[19]] != [b' '; 4] {
        return None;
    }
    day_name(&s[0..3], &WEEKDAYS_SHORT)?;
    let month = month_number(&s[4..7])?;
    let day = match s[8..10].strip_prefix(' ') {
        Some(one_digit) => fixed_digits(one_digit, 1)?,
        None => fixed_digits(&s[8..10], 2)?,
    };
    let time = parse_time_of_day(&s[11..19])?;
    let year = i64::from(fixed_digits(&s[20..24], 4)?);
    to_epoch_seconds(year, month, day, time)
}

/// Checks that `name` is one of `names` (the weekday itself is not checked against the date).
fn day_name(name: &str, names: &[&str; 7]) -> Option<()> {
    names.contains(&name).then_some(())
}

/// `hh:mm:ss`, two digits each (ranges are checked by [`to_epoch_seconds`]).
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

/// Seconds since the epoch of a UTC date and `(hour, minute, second)`, after range-checking
/// every field.
fn to_epoch_seconds(year: i64, month: u32, day: u32, time: (u32, u32, u32)) -> Option<u64> {
    let (hour, minute, second) = time;
    if !(YEAR_MIN..=YEAR_MAX).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
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
    /// 1994-11-06T08:49:37Z, RFC 9110's example instant.
    const RFC_EXAMPLE_SECS: u64 = 784_111_777;
    /// 2026-11-25T14:30:53Z, a fixed "now" for the RFC 850 year rule.
    const NOW_2026_SECS: u64 = 1_795_617_053;

    fn parse_in_2026(s: &str) -> Option<u64> {
        parse_http_date_at(s, NOW_2026_SECS)
    }

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
        assert!(http_date(u64::MAX).ends_with(" GMT"));
        assert!(iso8601_ms(u64::MAX).ends_with('Z'));
        assert!(iso8601_secs(u64::MAX).ends_with('Z'));
        assert!(amz_date(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn parses_imf_fixdate() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE_SECS)
        );
        assert_eq!(
            parse_http_date("Mon, 01 Jan 2024 00:00:00 GMT"),
            Some(1_704_067_200)
        );
        assert_eq!(
            parse_http_date("Fri, 24 May 2013 00:00:00 GMT"),
            Some(1_369_353_600)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
    }

    #[test]
    fn parses_rfc850_with_the_fifty_year_rule() {
        assert_eq!(
            parse_in_2026("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE_SECS)
        );
        assert_eq!(
            parse_in_2026("Thursday, 01-Jan-15 00:00:00 GMT"),
            Some(1_420_070_400)
        );
        // In 2026, "76" is 2076 (exactly 50 years ahead) and "77" is 1977 (51 would be too many).
        assert_eq!(
            parse_in_2026("Wednesday, 01-Jan-76 00:00:00 GMT"),
            Some(3_345_062_400)
        );
        assert_eq!(
            parse_in_2026("Saturday, 01-Jan-77 00:00:00 GMT"),
            Some(220_924_800)
        );
        // In 2026 "69" is 2069; in 2000 it was 1969, before the epoch and out of range.
        let in_2000 = 946_684_800;
        let dec_31_69 = "Wednesday, 31-Dec-69 23:59:59 GMT";
        assert_eq!(parse_in_2026(dec_31_69), Some(3_155_759_999));
        assert_eq!(parse_http_date_at(dec_31_69, in_2000), None);
        // The same digits move with the clock.
        assert_eq!(rfc850_year(94, 2026), 1994);
        assert_eq!(rfc850_year(0, 2026), 2000);
        assert_eq!(rfc850_year(76, 2026), 2076);
        assert_eq!(rfc850_year(77, 2026), 1977);
        assert_eq!(rfc850_year(94, 2050), 2094);
        assert_eq!(rfc850_year(0, 2099), 2100);
        assert_eq!(rfc850_year(49, 2099), 2149);
        assert_eq!(rfc850_year(50, 2099), 2050);
        // The real clock is after 2024, so these are 19xx and 20xx today.
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE_SECS)
        );
    }

    #[test]
    fn parses_asctime() {
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(RFC_EXAMPLE_SECS)
        );
        assert_eq!(
            parse_http_date("Sun Nov 06 08:49:37 1994"),
            Some(RFC_EXAMPLE_SECS)
        );
        assert_eq!(
            parse_http_date("Fri May 24 00:00:00 2013"),
            Some(1_369_353_600)
        );
    }

    #[test]
    fn round_trips_every_day_over_centuries() {
        // Every day from 1970 to ~2130 at a varying time of day.
        for day in 0..60_000u64 {
            let secs = day * SECONDS_PER_DAY + (day * 7919) % SECONDS_PER_DAY;
            let text = http_date(secs * 1000);
            assert_eq!(parse_http_date(&text), Some(secs), "{text}");
            let text = amz_date(secs);
            assert_eq!(parse_amz_date(&text), Some(secs), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_http_dates() {
        for bad in [
            "",
            "garbage",
            // Missing, wrong or extra parts.
            "Sun, 06 Nov 1994 08:49:37",
            "06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            " Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun,\t06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            // Day names: unknown, wrong case, or the wrong length for the form.
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday Nov  6 08:49:37 1994",
            // Months: unknown, long, wrong case.
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 November 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            // Digits: wrong width or sign.
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 01994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            // Out-of-range fields.
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2023 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:60 GMT",
            "Sun, 06 Nov 1969 23:59:59 GMT",
            // RFC 850 with a four-digit year or junk.
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT x",
            // asctime: the day is two digits or space and digit; nothing after the year.
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov 6 08:49:37 94",
            "Sun Nov 123 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 ",
            "Sun Nov  6 08:49:37 1994x",
            "Sun  Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 GMT 1994",
            "Sun Nov 31 08:49:37 1994",
            "Sun Nov  é 08:49:37 199",
        ] {
            assert_eq!(parse_in_2026(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn day_names_are_not_checked_against_the_date() {
        // 1994-11-06 was a Sunday; the date fields decide.
        assert_eq!(
            parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE_SECS)
        );
    }

    #[test]
    fn amz_date_known_values() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(1_369_353_600));
        assert_eq!(parse_amz_date("20261125T143053Z"), Some(NOW_2026_SECS));
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
    }

    #[test]
    fn amz_date_rejects_garbage() {
        for bad in [
            "",
            "20130524T000000",
            "20130524 000000Z",
            "2013052AT000000Z",
            "20131324T000000Z",
            "20130230T000000Z",
            "20130524T240000Z",
            "20130524T006000Z",
            "20130524T000060Z",
            "19690101T000000Z",
            "+0130524T000000Z",
            "20130524T000000Zx",
            "2013-05-24T00:00:00Z",
            "2013052\u{e9}000000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn amz_and_iso8601_formatting() {
        for s in [
            "20130524T000000Z",
            "20261125T143053Z",
            "20241231T235959Z",
            "20000229T120000Z",
        ] {
            assert_eq!(amz_date(parse_amz_date(s).unwrap()), s);
        }
        assert_eq!(iso8601_secs(NOW_2026_SECS), "2026-11-25T14:30:53Z");
    }

    #[test]
    fn system_time_conversions() {
        assert_eq!(unix_secs(system_time(NOW_2026_SECS)), NOW_2026_SECS);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), 0);
        let t = system_time(1) + Duration::from_millis(999);
        assert_eq!(unix_secs(t), 1);
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now_ms() > JAN_1_2024_MS);
    }
}
