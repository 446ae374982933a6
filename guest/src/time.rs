//! The request's time in calendar terms (UTC), and the parsing of times in settings: RFC 3339
//! instants, weekdays, times of day and periods (`15m`). A policy has no clock; `request.time` is the only
//! time it sees, given by the host (a scenario fixes it, a gate uses its clock).
//!
//! ```
//! use tagpolicy_guest::time::{Period, TimeOfDay, Weekday};
//! use tagpolicy_guest::Instant;
//!
//! let time = Instant::parse("2026-12-24T17:00:00Z").unwrap(); // in a policy, `request.time`
//! let now = time.date_time();
//! assert_eq!(now.weekday, Weekday::Thursday);
//! assert!(now.time_of_day() >= TimeOfDay::parse("16:00").unwrap());
//! assert!(Period::parse("7d").unwrap().contains(time, time));
//! ```

use crate::Instant;
use serde::{Deserialize, Deserializer};
use std::cmp::Ordering;
use std::fmt;

/// A day of the week. In settings it is written as [`Weekday::parse`] reads it.
///
/// ```
/// use tagpolicy_guest::time::Weekday;
/// use tagpolicy_guest::Instant;
///
/// let weekday = Instant::parse("2026-12-26T10:00:00Z").unwrap().date_time().weekday;
/// assert!(matches!(weekday, Weekday::Saturday | Weekday::Sunday));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// `mon`…`sun` or the full English name, in any case. The error says what is expected.
    ///
    /// ```
    /// use tagpolicy_guest::time::Weekday;
    ///
    /// assert_eq!(Weekday::parse("Sat"), Ok(Weekday::Saturday));
    /// assert!(Weekday::parse("caturday").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Weekday, String> {
        let lower = text.to_ascii_lowercase();
        Weekday::ALL
            .into_iter()
            .find(|day| {
                let name = day.name();
                lower == name || lower == name[..3]
            })
            .ok_or_else(|| format!("`{text}` is not a day of the week (mon, tue, … sun)"))
    }

    /// The lowercase English name, for messages.
    ///
    /// ```
    /// use tagpolicy_guest::time::Weekday;
    ///
    /// assert_eq!(Weekday::Saturday.name(), "saturday");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }
}

impl<'de> Deserialize<'de> for Weekday {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Weekday::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A time of day, `HH:MM`, from `00:00` to `24:00` (the end of the day). Ordered; displayed
/// as `HH:MM`. In settings it is written as [`TimeOfDay::parse`] reads it.
///
/// ```
/// use tagpolicy_guest::time::TimeOfDay;
///
/// let (opens, closes) = (TimeOfDay::parse("09:00").unwrap(), TimeOfDay::parse("17:30").unwrap());
/// assert!(opens < closes);
/// assert_eq!((closes.minutes, closes.to_string()), (1050, "17:30".to_string()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    /// Minutes since midnight, 0 to 1440.
    pub minutes: u32,
}

impl TimeOfDay {
    /// Parse `HH:MM`; the error says what is expected.
    ///
    /// ```
    /// use tagpolicy_guest::time::TimeOfDay;
    ///
    /// assert_eq!(TimeOfDay::parse("24:00").unwrap().minutes, 1440);
    /// assert_eq!(
    ///     TimeOfDay::parse("9:30").unwrap_err(),
    ///     "`9:30` is not a time of day such as `09:30` (00:00 to 24:00)"
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<TimeOfDay, String> {
        let wrong = || format!("`{text}` is not a time of day such as `09:30` (00:00 to 24:00)");
        let (hours, minutes) = text.split_once(':').ok_or_else(wrong)?;
        if hours.len() != 2 || minutes.len() != 2 {
            return Err(wrong());
        }
        let hours: u32 = hours.parse().map_err(|_| wrong())?;
        let minutes: u32 = minutes.parse().map_err(|_| wrong())?;
        if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
            return Err(wrong());
        }
        Ok(TimeOfDay { minutes: hours * 60 + minutes })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TimeOfDay::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A date and time in UTC, to the second: what [`Instant::date_time`] gives.
///
/// ```
/// use tagpolicy_guest::Instant;
///
/// let t = Instant::parse("2026-12-24T17:00:00Z").unwrap().date_time();
/// assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2026, 12, 24, 17, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The year (proleptic Gregorian; may be before 1 or after 9999).
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 59.
    pub second: u32,
    /// The day of the week.
    pub weekday: Weekday,
}

impl DateTime {
    /// The time of day, to the minute.
    ///
    /// ```
    /// use tagpolicy_guest::Instant;
    ///
    /// let time = Instant::parse("2026-12-24T17:05:59Z").unwrap();
    /// assert_eq!(time.date_time().time_of_day().to_string(), "17:05");
    /// ```
    pub fn time_of_day(&self) -> TimeOfDay {
        TimeOfDay { minutes: self.hour * 60 + self.minute }
    }
}

impl Instant {
    /// Parse an RFC 3339 time in UTC, `2026-12-24T17:00:00Z` (a `+00:00` offset and fractions
    /// of a second are accepted; other offsets are refused: say the time in UTC). The error
    /// says what is wrong. [`Instant`] in settings is read with it.
    ///
    /// ```
    /// use tagpolicy_guest::Instant;
    ///
    /// let time = Instant::parse("2026-12-24T17:00:00.5Z").unwrap();
    /// assert_eq!((time.seconds, time.nanoseconds), (1_798_131_600, 500_000_000));
    /// assert!(Instant::parse("2026-12-24T18:00:00+01:00").unwrap_err().contains("UTC"));
    /// ```
    pub fn parse(text: &str) -> Result<Instant, String> {
        let wrong =
            |why: &str| format!("`{text}` is not a UTC time such as `2026-12-24T17:00:00Z`: {why}");
        let (date, rest) = text.split_once(['T', 't', ' ']).ok_or_else(|| wrong("no `T`"))?;
        let time = rest
            .strip_suffix(['Z', 'z'])
            .or_else(|| rest.strip_suffix("+00:00"))
            .ok_or_else(|| wrong("give the time in UTC, ending in `Z`"))?;
        let number = |part: &str, what: &str| -> Result<u32, String> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(wrong(&format!("bad {what}")));
            }
            part.parse().map_err(|_| wrong(&format!("bad {what}")))
        };
        let date: Vec<&str> = date.split('-').collect();
        let [year, month, day] = date.as_slice() else {
            return Err(wrong("the date is YYYY-MM-DD"));
        };
        let (year, month, day) =
            (number(year, "year")?, number(month, "month")?, number(day, "day")?);
        let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
        let clock: Vec<&str> = clock.split(':').collect();
        let [hour, minute, second] = clock.as_slice() else {
            return Err(wrong("the time is HH:MM:SS"));
        };
        let (hour, minute, second) =
            (number(hour, "hour")?, number(minute, "minute")?, number(second, "second")?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year as i64, month) {
            return Err(wrong("no such date"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(wrong("no such time"));
        }
        let nanoseconds = if fraction.is_empty() {
            0
        } else {
            let digits: String = fraction.chars().take(9).collect();
            let padded = format!("{digits:0<9}");
            number(&padded, "fraction")?
        };
        let days = days_from_civil(year as i64, month, day);
        let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Ok(Instant { seconds, nanoseconds })
    }

    /// The calendar date and time in UTC.
    ///
    /// ```
    /// use tagpolicy_guest::time::Weekday;
    /// use tagpolicy_guest::Instant;
    ///
    /// let t = Instant::parse("2000-02-29T12:34:56Z").unwrap().date_time();
    /// assert_eq!((t.month, t.day, t.weekday), (2, 29, Weekday::Tuesday));
    /// ```
    pub fn date_time(&self) -> DateTime {
        let days = self.seconds.div_euclid(86_400);
        let second_of_day = self.seconds.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = Weekday::ALL[((days + 3).rem_euclid(7)) as usize];
        DateTime {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
            weekday,
        }
    }
}

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Instant {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanoseconds).cmp(&(other.seconds, other.nanoseconds))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.date_time();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Instant::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A length of time in settings: numbers with units `d`, `h`, `m` or `s`, largest first
/// (`90s`, `15m`, `1h30m`, `7d`), at most 366 days; displayed as written. In settings it is
/// written as [`Period::parse`] reads it.
///
/// ```
/// use tagpolicy_guest::time::Period;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     grace: Period,
/// }
///
/// let settings: Settings = serde_json::from_str(r#"{"grace": "1h30m"}"#).unwrap();
/// assert_eq!((settings.grace.seconds, settings.grace.to_string()), (5400, "1h30m".to_string()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// The length, in seconds (1 to 366 days).
    pub seconds: i64,
    /// As written, for messages.
    text: String,
}

impl Period {
    const MAX_SECONDS: i64 = 366 * 86_400;

    /// Parse a period such as `1h30m`; the error says what is expected.
    ///
    /// ```
    /// use tagpolicy_guest::time::Period;
    ///
    /// assert_eq!(Period::parse("15m").unwrap().seconds, 900);
    /// assert_eq!(
    ///     Period::parse("30m1h").unwrap_err(),
    ///     "`30m1h` is not a period such as `90s`, `15m`, `1h30m` or `7d`"
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<Period, String> {
        let invalid = || format!("`{text}` is not a period such as `90s`, `15m`, `1h30m` or `7d`");
        let units = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
        // The unit read last: each must be smaller than the one before.
        let (mut seconds, mut rest, mut last) = (0i64, text, None);
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
            let number: i64 = rest[..digits].parse().map_err(|_| invalid())?;
            let unit = rest[digits..].chars().next().ok_or_else(invalid)?;
            let position = units.iter().position(|(name, _)| *name == unit).ok_or_else(invalid)?;
            if last.is_some_and(|last| position <= last) {
                return Err(invalid());
            }
            last = Some(position);
            seconds = number
                .checked_mul(units[position].1)
                .and_then(|part| seconds.checked_add(part))
                .filter(|total| *total <= Self::MAX_SECONDS)
                .ok_or_else(|| format!("`{text}` is longer than 366 days"))?;
            rest = &rest[digits + 1..];
        }
        if seconds == 0 {
            return Err(format!("`{text}` is no time at all; give a period such as `15m`"));
        }
        Ok(Period { seconds, text: text.to_string() })
    }

    /// Whether `since` is at most this long before `now` (and not after it).
    ///
    /// ```
    /// use tagpolicy_guest::time::Period;
    /// use tagpolicy_guest::Instant;
    ///
    /// let changed = Instant::parse("2026-12-22T10:00:00Z").unwrap(); // e.g. a tag's history
    /// let now = Instant::parse("2026-12-24T17:00:00Z").unwrap(); // `request.time`
    /// assert!(Period::parse("7d").unwrap().contains(changed, now));
    /// assert!(!Period::parse("1d").unwrap().contains(changed, now));
    /// ```
    pub fn contains(&self, since: Instant, now: Instant) -> bool {
        // In i128: the seconds of two instants centuries apart overflow i64 as nanoseconds.
        let nanos =
            |at: Instant| i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanoseconds);
        let age = nanos(now) - nanos(since);
        (0..=i128::from(self.seconds) * 1_000_000_000).contains(&age)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date: count whole 400-year eras (146,097
/// days each) from 0000-03-01, then the years and days within the era, with March as the
/// first month so that February's leap day ends the year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month =
        if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_the_calendar() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T12:34:56Z",
            "2026-12-24T17:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let instant = Instant::parse(text).unwrap();
            assert_eq!(instant.to_string(), text);
        }
        assert_eq!(Instant::parse("1970-01-02T00:00:00Z").unwrap().seconds, 86_400);
        assert_eq!(
            Instant::parse("2026-11-27T00:00:00Z").unwrap().date_time().weekday,
            Weekday::Friday
        );
        assert_eq!(Instant::parse("2000-01-01T00:00:00.5Z").unwrap().nanoseconds, 500_000_000);
        for day in 0..1_000_000i64 {
            let (y, m, d) = civil_from_days(day - 500_000);
            assert_eq!(days_from_civil(y, m, d), day - 500_000);
        }
    }

    #[test]
    fn periods_read_units_largest_first() {
        assert_eq!(Period::parse("15m").unwrap().seconds, 900);
        assert_eq!(Period::parse("1h30m").unwrap().seconds, 5400);
        assert_eq!(Period::parse("7d").unwrap().seconds, 604_800);
        assert_eq!(Period::parse("1h30m").unwrap().to_string(), "1h30m");
        for bad in
            ["", "15", "m", "15x", "30m1h", "1m1m", "-5m", "0s", "367d", "99999999999999999999s"]
        {
            assert!(Period::parse(bad).is_err(), "{bad:?}");
        }
        let period = Period::parse("15m").unwrap();
        let at = |seconds| Instant { seconds, nanoseconds: 0 };
        assert!(period.contains(at(1000), at(1900)));
        assert!(!period.contains(at(1000), at(1901)));
        assert!(!period.contains(at(1000), at(999)), "not before it began");
        // Centuries apart: no overflow makes an old creation look recent.
        assert!(!period.contains(at(0), at(18_446_744_074)));
        assert!(!period.contains(at(i64::MIN / 2), at(i64::MAX / 2)));
    }

    #[test]
    fn bad_times_say_what_is_wrong() {
        assert!(Instant::parse("2026-02-30T00:00:00Z").unwrap_err().contains("no such date"));
        assert!(Instant::parse("2026-12-24T17:00:00+01:00").unwrap_err().contains("UTC"));
        assert!(Instant::parse("yesterday").is_err());
        assert!(TimeOfDay::parse("25:00").is_err());
        assert_eq!(TimeOfDay::parse("24:00").unwrap().minutes, 1440);
        assert_eq!(Weekday::parse("Sat").unwrap(), Weekday::Saturday);
        assert!(Weekday::parse("caturday").unwrap_err().contains("caturday"));
    }
}
