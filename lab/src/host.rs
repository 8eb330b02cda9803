//! The machine and the moment a report describes: the UTC date from the
//! system clock, the CPU count, the kernel release.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// The civil date of `secs` seconds since the epoch (proleptic Gregorian).
    pub fn from_epoch(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's days_from_civil inverse.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: tod / 3600,
            minute: tod / 60 % 60,
            second: tod % 60,
        }
    }

    pub fn now() -> Utc {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Utc::from_epoch(secs)
    }

    /// `2026-11-22 07:51 UTC`, as the tables' first line says it.
    pub fn minutes(&self) -> String {
        format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }

    /// `2026-11-22T07:51:03Z`, as the JSON says it.
    pub fn rfc3339(&self) -> String {
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since the epoch of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of a log line's UTC time stamp,
/// `2026-12-03T19:28:20.123456Z` (fraction and Z optional).
pub fn epoch_of_log_time(stamp: &str) -> Option<f64> {
    let s = stamp.strip_suffix('Z').unwrap_or(stamp);
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|v| v.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|v| v.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some((days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se) as f64 + frac)
}

/// The CPUs this process may run on (what `nproc` says).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The kernel release (what `uname -r` says).
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Seconds since the epoch now, with microseconds (like `$EPOCHREALTIME`).
pub fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(Utc::from_epoch(0).rfc3339(), "1970-01-01T00:00:00Z");
        // date -u -d @1763797863
        assert_eq!(
            Utc::from_epoch(1_763_797_863).rfc3339(),
            "2025-11-22T07:51:03Z"
        );
        assert_eq!(
            Utc::from_epoch(1_709_208_000).minutes(),
            "2024-02-29 12:00 UTC"
        );
        assert_eq!(
            Utc::from_epoch(951_868_799).rfc3339(),
            "2000-02-29T23:59:59Z"
        );
        assert_eq!(Utc::from_epoch(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn log_time_stamps() {
        assert_eq!(
            epoch_of_log_time("2025-11-22T07:51:03Z"),
            Some(1_763_797_863.0)
        );
        let t = epoch_of_log_time("2025-11-22T07:51:03.250000Z").unwrap();
        assert!((t - 1_763_797_863.25).abs() < 1e-6);
        assert_eq!(
            epoch_of_log_time("2000-02-29T23:59:59"),
            Some(951_868_799.0)
        );
        assert_eq!(epoch_of_log_time("WARN"), None);
        assert_eq!(epoch_of_log_time("2025-13-01T00:00:00Z"), None);
    }

    #[test]
    fn the_machine() {
        assert!(cpus() >= 1);
        assert!(!kernel().is_empty());
        assert!(epoch_now() > 1.7e9);
    }
}
