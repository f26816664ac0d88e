//! `UtcDateTime`: a point in time shown as the original's timezone-aware
//! UTC `datetime` is (`2026-06-11T03:04:05.123456+00:00`), without a
//! date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// A UTC date-time to the microsecond (`StepResult::timestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDateTime(SystemTime);

impl UtcDateTime {
    /// The current time.
    pub fn now() -> Self {
        Self(SystemTime::now())
    }

    /// The date-time at `time`.
    pub fn from_system_time(time: SystemTime) -> Self {
        Self(time)
    }

    /// This date-time as a `SystemTime`.
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// Seconds since the Unix epoch (negative before it).
    pub fn unix_seconds(self) -> f64 {
        match self.0.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        }
    }
}

impl std::fmt::Display for UtcDateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since_epoch = self.0.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let seconds = since_epoch.as_secs();
        let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
        let of_day = seconds % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )?;
        // Like Python's `isoformat`, microseconds only when there are some.
        match since_epoch.subsec_micros() {
            0 => f.write_str("+00:00"),
            micros => write!(f, ".{micros:06}+00:00"),
        }
    }
}

impl Serialize for UtcDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, micros: u64) -> UtcDateTime {
        UtcDateTime::from_system_time(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros))
    }

    #[test]
    fn formats_like_python_isoformat_of_an_aware_utc_datetime() {
        assert_eq!(at(0, 0).to_string(), "1970-01-01T00:00:00+00:00");
        // datetime.fromtimestamp(1781147045.123456, timezone.utc).isoformat()
        assert_eq!(
            at(1_781_147_045, 123_456).to_string(),
            "2026-06-11T03:04:05.123456+00:00"
        );
        // A leap day.
        assert_eq!(at(951_782_400, 0).to_string(), "2000-02-29T00:00:00+00:00");
        assert_eq!(
            serde_json::to_value(at(0, 1)).unwrap(),
            "1970-01-01T00:00:00.000001+00:00"
        );
    }
}
