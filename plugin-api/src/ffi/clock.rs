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
}
