//! Clocks and time formatting for events: RFC 3339 (UTC, microseconds)
//! parsed with the `time` crate and formatted on the stack from `time`'s
//! calendar dates, unix seconds as `f64`, and a cheap coarse monotonic clock
//! for the progress tracker's hot path.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339 as WellKnownRfc3339;
use time::{Date, OffsetDateTime};

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
/// 0000-01-01T00:00:00Z: the earliest instant a 4-digit year can show.
const MIN_UNIX_SECS: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z: the latest whole second a 4-digit year can show.
const MAX_UNIX_SECS: i64 = 253_402_300_799;

/// Length of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const RFC3339_LEN: usize = 27;

/// Splits a `SystemTime` into whole unix seconds (floored, so negative before
/// 1970) and the microseconds within that second (`0..1_000_000`).
/// Sub-microsecond precision is dropped (towards the past).
pub fn unix_parts(t: SystemTime) -> (i64, u32) {
    let total_micros: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_nanos() / 1_000) as i128,
        Err(e) => -(e.duration().as_nanos().div_ceil(1_000) as i128),
    };
    let secs = total_micros.div_euclid(MICROS_PER_SEC as i128);
    let micros = total_micros.rem_euclid(MICROS_PER_SEC as i128) as u32;
    let secs = secs.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    (secs, micros)
}

/// Unix time in seconds with microsecond precision, as Synapse log entries
/// carry it in `timestamp`.
pub fn unix_seconds(t: SystemTime) -> f64 {
    let (secs, micros) = unix_parts(t);
    unix_seconds_from_parts(secs, micros)
}

/// Like [`unix_seconds`] for parts from [`unix_parts`]. One correctly
/// rounded division of an exact integer, so the shortest decimal form of the
/// result is the microsecond value itself (for any date before year 2255).
pub fn unix_seconds_from_parts(secs: i64, micros: u32) -> f64 {
    let total = secs as i128 * MICROS_PER_SEC as i128 + micros as i128;
    total as f64 / 1e6
}

/// A formatted `YYYY-MM-DDTHH:MM:SS.ffffffZ` timestamp held on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339([u8; RFC3339_LEN]);

impl Rfc3339 {
    /// Formats `t` in UTC with microseconds. Times outside years 0000..=9999
    /// are clamped to the nearest representable instant.
    pub fn new(t: SystemTime) -> Self {
        let (secs, micros) = unix_parts(t);
        Self::from_parts(secs, micros)
    }

    /// Formats parts from [`unix_parts`]. The calendar date comes from the
    /// `time` crate; the digits are written straight into a buffer on the
    /// stack, because `time`'s own `format_into` costs 5x as much: 474 ns
    /// against 87 ns for this (93 ns for the hand-written calendar code it
    /// replaced), measured side by side by `cargo bench -p loader --bench
    /// replaced_by_crates`; that is half of what an event may cost at the
    /// 1 M events/s target.
    pub fn from_parts(secs: i64, micros: u32) -> Self {
        let (secs, micros) = if secs < MIN_UNIX_SECS {
            (MIN_UNIX_SECS, 0)
        } else if secs > MAX_UNIX_SECS {
            (MAX_UNIX_SECS, 999_999)
        } else {
            (secs, micros.min(999_999))
        };
        let days = secs.div_euclid(SECS_PER_DAY);
        let second_of_day = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = calendar_date(days);
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut b[0..4], year);
        put_digits(&mut b[5..7], month);
        put_digits(&mut b[8..10], day);
        put_digits(&mut b[11..13], second_of_day / 3600);
        put_digits(&mut b[14..16], second_of_day / 60 % 60);
        put_digits(&mut b[17..19], second_of_day % 60);
        put_digits(&mut b[20..26], micros);
        Rfc3339(b)
    }

    pub fn as_bytes(&self) -> &[u8; RFC3339_LEN] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and the ASCII template characters are ever written.
        std::str::from_utf8(&self.0).unwrap_or("0000-00-00T00:00:00.000000Z")
    }
}

/// Formats the times of one writer's events: the date and time of day are
/// formatted once a second and reused while the second is the same, so an
/// event in a burst costs only its microseconds.
#[derive(Debug, Clone, Default)]
pub struct TimeCache {
    second: Option<(i64, Rfc3339)>,
}

impl TimeCache {
    /// [`Rfc3339::from_parts`], from the cache when the second is known.
    pub fn rfc3339(&mut self, secs: i64, micros: u32) -> Rfc3339 {
        if !(MIN_UNIX_SECS..=MAX_UNIX_SECS).contains(&secs) {
            return Rfc3339::from_parts(secs, micros);
        }
        let mut text = match self.second {
            Some((cached, text)) if cached == secs => text,
            _ => {
                let text = Rfc3339::from_parts(secs, 0);
                self.second = Some((secs, text));
                text
            }
        };
        put_digits(&mut text.0[20..26], micros.min(999_999));
        text
    }
}

/// The second (2^33, in year 2242) from which [`write_unix_seconds`]
/// formats the float: below it the float's spacing is under a microsecond,
/// so its shortest form is the digits of the seconds and microseconds
/// themselves (no other decimal with as few digits rounds to it).
const DIGITS_UNTIL_SECS: i64 = 1 << 33;

/// Writes [`unix_seconds_from_parts`] as JSON, as serde_json writes the
/// `f64` (`1795476000.12345`, `1.0`), without formatting a float for times
/// between 1970 and 2242.
pub fn write_unix_seconds<W: std::io::Write>(out: &mut W, secs: i64, micros: u32) -> std::io::Result<()> {
    if !(0..DIGITS_UNTIL_SECS).contains(&secs) || micros > 999_999 {
        let seconds = unix_seconds_from_parts(secs, micros);
        return serde_json::to_writer(out, &seconds).map_err(std::io::Error::from);
    }
    // At most 10 digits of seconds, the point and 6 of microseconds.
    let mut text = [b'0'; 17];
    let whole_digits = (secs.max(1).ilog10() + 1) as usize;
    put_digits(&mut text[..whole_digits], secs as u64);
    text[whole_digits] = b'.';
    let fraction = &mut text[whole_digits + 1..whole_digits + 7];
    put_digits(fraction, micros);
    let kept = fraction.iter().rposition(|&d| d != b'0').map_or(1, |last| last + 1);
    out.write_all(&text[..whole_digits + 1 + kept])
}

/// Days since 1970-01-01 (within years 0000..=9999) to (year, month, day).
fn calendar_date(days_since_epoch: i64) -> (u32, u32, u32) {
    let julian_day = i32::try_from(days_since_epoch + UNIX_EPOCH_JULIAN_DAY).unwrap_or(UNIX_EPOCH_JULIAN_DAY as i32);
    let date = Date::from_julian_day(julian_day).unwrap_or(Date::MIN);
    let (year, month, day) = date.to_calendar_date();
    (year.max(0) as u32, u32::from(u8::from(month)), u32::from(day))
}

/// Writes `value` (any unsigned width: `u32` fields of a date, `u64`
/// seconds) as zero-padded decimal digits filling `out` exactly.
fn put_digits(out: &mut [u8], value: impl Into<u64>) {
    let mut value = value.into();
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Parses an RFC 3339 timestamp such as `2026-11-23T23:20:00.123456Z` or
/// `2026-11-24T08:20:00+09:00` (`t`/space separator and `z` accepted; up to
/// nanoseconds kept), with the `time` crate. Returns `None` when `s` is not
/// such a timestamp.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    // RFC 3339 names `T`, and a space for readability; `time` would take any
    // character there.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    // A hand-written reader of the exact format `Rfc3339` writes took
    // 14.3 ns against the `time` crate's 18.1 ns (one run of
    // `cargo bench -p loader --bench replaced_by_crates -- event_time_parse`):
    // 4 ns an event, not worth a parser of our own.
    OffsetDateTime::parse(s, &WellKnownRfc3339).ok().map(SystemTime::from)
}

/// A `SystemTime` from unix seconds (the JSONL `timestamp` field), to the
/// nearest microsecond. `None` for non-finite or absurdly large values.
pub fn system_time_from_unix_seconds(secs: f64) -> Option<SystemTime> {
    if !secs.is_finite() || secs.abs() > 1e15 {
        return None;
    }
    let micros = (secs * 1e6).round() as i64;
    let d = Duration::from_micros(micros.unsigned_abs());
    Some(if micros >= 0 { UNIX_EPOCH + d } else { UNIX_EPOCH - d })
}

/// Which clock [`coarse_monotonic_nanos`] reads; decided on first use so a
/// caller never sees readings of two different clocks mixed.
/// Monotonic nanoseconds since an unspecified origin, cheap enough to read on
/// every call of a hot loop: plugin-api's coarse clock, the one the plugin
/// side of `set_progress` reads too. Only compare readings of this function
/// with each other.
pub fn coarse_monotonic_nanos() -> u64 {
    plugin_api::host::coarse_now_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_cache_formats_as_rfc3339_does() {
        let mut cache = TimeCache::default();
        for (secs, micros) in [
            (1_795_476_000, 123_456),
            (1_795_476_000, 7),
            (1_795_476_001, 0),
            (-1, 999_999),
            (MAX_UNIX_SECS + 5, 1),
            (MIN_UNIX_SECS - 5, 1),
            (0, 0),
        ] {
            assert_eq!(
                cache.rfc3339(secs, micros),
                Rfc3339::from_parts(secs, micros),
                "{secs} {micros}"
            );
        }
    }

    #[test]
    fn unix_seconds_are_written_as_serde_json_writes_the_float() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut cases = vec![
            (0, 0),
            (1, 0),
            (1_795_476_000, 123_450),
            (1_795_476_000, 100_000),
            (-5, 3),
        ];
        cases.push((DIGITS_UNTIL_SECS - 1, 999_999));
        cases.push((DIGITS_UNTIL_SECS, 1));
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            cases.push((
                (seed % DIGITS_UNTIL_SECS as u64) as i64,
                (seed >> 40) as u32 % 1_000_000,
            ));
        }
        for (secs, micros) in cases {
            let mut ours = Vec::new();
            write_unix_seconds(&mut ours, secs, micros).unwrap();
            let float = serde_json::to_string(&unix_seconds_from_parts(secs, micros)).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), float, "{secs} {micros}");
        }
    }

    #[test]
    fn impossible_dates_and_times_are_refused() {
        for text in [
            "2023-02-29T12:00:00.000000Z",
            "2026-11-23T24:00:00.000000Z",
            "2026-11-23T23:20:00.12345xZ",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }

    fn at(secs: i64, micros: u32) -> String {
        Rfc3339::from_parts(secs, micros).as_str().to_owned()
    }

    fn time(secs: i64, nanos: u32) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs as u64, nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
        }
    }

    #[test]
    fn formats_known_dates() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000000Z"); // 2000 is leap
        assert_eq!(at(951_868_800, 1), "2000-03-01T00:00:00.000001Z");
        assert_eq!(at(946_684_799, 999_999), "1999-12-31T23:59:59.999999Z");
        assert_eq!(at(946_684_800, 0), "2000-01-01T00:00:00.000000Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000000Z");
        assert_eq!(at(1_798_070_400, 123_456), "2026-12-24T00:00:00.123456Z");
        assert_eq!(at(1_795_476_000, 123_456), "2026-11-23T23:20:00.123456Z");
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(at(4_107_456_000, 0), "2100-02-28T00:00:00.000000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000000Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000000Z");
        assert_eq!(at(-1, 500_000), "1969-12-31T23:59:59.500000Z");
        assert_eq!(at(2_147_483_647, 0), "2038-01-19T03:14:07.000000Z");
    }

    #[test]
    fn clamps_outside_four_digit_years() {
        assert_eq!(at(i64::MIN, 5), "0000-01-01T00:00:00.000000Z");
        assert_eq!(at(MIN_UNIX_SECS, 0), "0000-01-01T00:00:00.000000Z");
        assert_eq!(at(MAX_UNIX_SECS, 999_999), "9999-12-31T23:59:59.999999Z");
        assert_eq!(at(i64::MAX, 0), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn every_day_for_two_centuries_round_trips() {
        // 1890..2110 has leap years, the non-leap 1900 and 2100, and the leap 2000.
        let (first, last) = (-2_524_521_600_i64, 4_417_977_600_i64);
        let mut previous = String::new();
        for secs in (first..last).step_by(86_400) {
            let text = at(secs, 250_000);
            assert!(text > previous, "{text} after {previous}");
            assert_eq!(parse_rfc3339(&text), Some(time(secs, 250_000_000)), "{text}");
            previous = text;
        }
        assert_eq!(at(-2_208_988_800 + 59 * 86_400, 0), "1900-03-01T00:00:00.000000Z");
    }

    #[test]
    fn system_time_parts_floor_towards_the_past() {
        assert_eq!(unix_parts(time(1, 999_999_999)), (1, 999_999));
        assert_eq!(unix_parts(UNIX_EPOCH - Duration::from_nanos(1)), (-1, 999_999));
        assert_eq!(unix_parts(UNIX_EPOCH - Duration::from_micros(1_500_000)), (-2, 500_000));
        assert_eq!(
            Rfc3339::new(time(1_795_476_000, 123_456_789)).as_str(),
            "2026-11-23T23:20:00.123456Z"
        );
    }

    #[test]
    fn unix_seconds_print_as_their_microseconds() {
        let s = unix_seconds(time(1_795_476_000, 123_456_000));
        assert_eq!(serde_json::to_string(&s).unwrap(), "1795476000.123456");
        assert_eq!(unix_seconds(time(-2, 500_000_000)), -1.5);
    }

    #[test]
    fn parses_what_it_formats_and_common_variants() {
        for &(secs, nanos) in &[
            (0, 0),
            (1_795_476_000, 123_456_000),
            (951_782_400, 1_000),
            (-1, 500_000_000),
        ] {
            let t = time(secs, nanos);
            assert_eq!(parse_rfc3339(Rfc3339::new(t).as_str()), Some(t));
        }
        let base = time(1_795_476_000, 0);
        assert_eq!(parse_rfc3339("2026-11-23T23:20:00Z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-23t23:20:00z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-24T08:20:00+09:00"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-23T18:50:00-04:30"), Some(base));
        assert_eq!(
            parse_rfc3339("2026-11-23 23:20:00.5Z"),
            Some(time(1_795_476_000, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T23:20:00.1234567891Z"),
            Some(time(1_795_476_000, 123_456_789))
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T23:20:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T23:20:00.Z",
            "2026-11-23T23:20:00+0900",
            "2026-11-23T23:20:00Zjunk",
            "2026/11/23T23:20:00Z",
            "２０26-11-23T23:20:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn unix_seconds_back_to_system_time() {
        assert_eq!(
            system_time_from_unix_seconds(1795476000.123456),
            Some(time(1_795_476_000, 123_456_000))
        );
        assert_eq!(system_time_from_unix_seconds(-1.5), Some(time(-2, 500_000_000)));
        assert_eq!(system_time_from_unix_seconds(f64::NAN), None);
    }

    #[test]
    fn coarse_clock_is_monotonic_and_moves() {
        let a = coarse_monotonic_nanos();
        std::thread::sleep(Duration::from_millis(30));
        let b = coarse_monotonic_nanos();
        assert!(b >= a);
        assert!(b - a >= 15_000_000, "advanced only {} ns", b - a);
    }
}
