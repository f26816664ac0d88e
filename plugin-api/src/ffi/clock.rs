//! A coarse monotonic clock for the progress calls that run in tight loops,
//! on both sides of the boundary (the plugin's progress record and the
//! host's progress tracker). On Linux it reads `CLOCK_MONOTONIC_COARSE`:
//! the kernel's last tick, served from the vDSO without a hardware counter,
//! so it costs a few nanoseconds even on virtual machines where
//! `Instant::now` falls back to a real system call (it cost a fifth of a
//! `set_progress` call here). Its resolution is one scheduler tick (1 to
//! 10 ms), ample for times rounded to hundredths and for throttling at
//! 100 ms. Elsewhere, or if the kernel refuses it, `Instant` is used; the
//! choice is made once, so readings always come from the same clock.
//!
//! Queued log entries are stamped with [`ticks`]: the processor's time-stamp
//! counter on x86-64 (one instruction, no system call), read again with the
//! wall clock by the log thread to turn a count into a time
//! ([`TickScale`]). Elsewhere the ticks are the wall clock's nanoseconds.

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds on a monotonic clock with an arbitrary origin, at a
/// resolution of a few milliseconds at worst. Only compare readings of this
/// function with each other.
pub fn coarse_now_nanos() -> u64 {
    static USE_COARSE: OnceLock<bool> = OnceLock::new();
    if *USE_COARSE.get_or_init(|| coarse_clock().is_some()) {
        // The clock worked once, so it keeps working; should it not, a
        // reading of 0 is safer than one from a clock of another origin
        // (readers take the later of two readings).
        coarse_clock().unwrap_or(0)
    } else {
        instant_nanos()
    }
}

fn instant_nanos() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn coarse_clock() -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer, and
    // `ts` is a live, aligned local nothing else borrows. A kernel (or a
    // seccomp filter) that refuses the clock makes it return -1 without
    // touching memory, which reads as `None`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 || ts.tv_sec < 0 || ts.tv_nsec < 0 {
        return None;
    }
    Some((ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn coarse_clock() -> Option<u64> {
    None
}

/// A cheap, fine count that only goes forward: the time-stamp counter on
/// x86-64 (constant rate on every processor of the last decade), the wall
/// clock's nanoseconds elsewhere. Turn it into a time with [`TickScale`].
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn ticks() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; every x86-64 processor has it.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

/// See the x86-64 version: here the ticks are Unix nanoseconds.
#[cfg(not(target_arch = "x86_64"))]
pub fn ticks() -> u64 {
    unix_nanos_now()
}

/// The wall clock in nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Turns [`ticks`] into Unix nanoseconds: two readings of both clocks, the
/// first when the scale was made and the latest at [`TickScale::mark`],
/// give the rate; a count is placed back from the latest reading. Entries
/// are converted just after a mark, so the placing spans microseconds.
#[derive(Debug, Clone, Copy)]
pub struct TickScale {
    first: (u64, u64),
    latest: (u64, u64),
    /// Nanoseconds a tick, from the two readings (worked out at each mark,
    /// not for each entry).
    nanos_per_tick: f64,
}

impl TickScale {
    /// A scale whose first reading is now.
    pub fn new() -> Self {
        let now = (ticks(), unix_nanos_now());
        Self {
            first: now,
            latest: now,
            nanos_per_tick: 0.0,
        }
    }

    /// Reads both clocks again (the wall clock between two tick readings,
    /// paired with their middle).
    pub fn mark(&mut self) {
        let before = ticks();
        let wall = unix_nanos_now();
        let after = ticks();
        self.latest = (before + (after - before) / 2, wall);
        let tick_span = self.latest.0.saturating_sub(self.first.0);
        let nano_span = self.latest.1.saturating_sub(self.first.1);
        self.nanos_per_tick = if tick_span == 0 {
            0.0
        } else {
            nano_span as f64 / tick_span as f64
        };
    }

    /// The Unix nanoseconds of a tick count read at most a little before
    /// or after the latest mark (an `f64` places a span of seconds to the
    /// nanosecond).
    pub fn unix_nanos(&self, tick: u64) -> u64 {
        let ticks_back = self.latest.0.wrapping_sub(tick) as i64;
        let nanos_back = (ticks_back as f64 * self.nanos_per_tick) as i64;
        self.latest.1.saturating_add_signed(-nanos_back)
    }
}

impl Default for TickScale {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_goes_back_and_follows_real_time() {
        let start = coarse_now_nanos();
        let mut last = start;
        for _ in 0..1000 {
            let now = coarse_now_nanos();
            assert!(now >= last);
            last = now;
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = coarse_now_nanos() - start;
        assert!(
            (20_000_000..5_000_000_000).contains(&slept),
            "{slept} ns for a 30 ms sleep"
        );
    }

    #[test]
    fn ticks_read_back_as_the_wall_time_of_their_reading() {
        let mut scale = TickScale::new();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (tick, wall) = (ticks(), unix_nanos_now());
        std::thread::sleep(std::time::Duration::from_millis(5));
        scale.mark();
        let placed = scale.unix_nanos(tick);
        let off = placed.abs_diff(wall);
        assert!(off < 500_000, "{off} ns off");
    }
}
