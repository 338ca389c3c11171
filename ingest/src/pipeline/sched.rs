//! How the pipeline's threads, and the request handlers that feed them,
//! compete for a CPU (Linux; elsewhere these do nothing). Used only when
//! asked (`PipelineConfig::thread_priorities`, `ledgerd
//! --thread-priorities`): by default no thread's scheduling is changed.
//!
//! Two settings per thread:
//! - its **nice** value, which decides its share of a busy CPU;
//! - its **slice**, which decides how soon it gets a CPU when it wakes.
//!
//! Linux's fair scheduler (EEVDF, 6.6 and later) lets a running thread
//! finish its time slice before a thread that just woke takes the CPU,
//! whatever their nice values. The default slice on this 2-core machine
//! kept the committer and the acknowledger waiting 2-5 ms behind a
//! RocksDB flush or an index span build 94 and 58 times in a 7-second run
//! at half of peak. With a shorter slice than the thread running, Linux
//! 6.12 and later let the woken thread take the CPU at once ("PREEMPT_SHORT"):
//! 20 and 15 times, none over 2.4 ms.
//! Older kernels take the nice value and ignore the slice.
//!
//! The slice is set with `sched_setattr(2)` (`sched_runtime` of a
//! `SCHED_OTHER` thread), which has no wrapper in `rustix`: the one
//! `unsafe` call of this crate is here.

#![allow(unsafe_code)]

use std::time::Duration;

/// The slice of the threads an acknowledgement waits for: the pipeline's
/// stages and the request handlers. Linux's shortest (0.1 ms); RocksDB's
/// flush threads and the span builder keep the default (1.4 ms on this
/// 2-core machine, as `/proc/thread-self/sched` shows).
pub const LATENCY_SLICE: Duration = Duration::from_micros(100);

/// Why a thread's priority could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PriorityError {
    /// The kernel refused (e.g. `EPERM`: raising the priority, a nice below
    /// the thread's, needs `CAP_SYS_NICE`).
    #[error("sched_setattr: {0}")]
    Refused(std::io::Error),
}

/// Sets the calling thread's nice value and, if `slice` is given, its time
/// slice (clamped by Linux to 0.1-100 ms). Where `sched_setattr` is not
/// allowed (other than for want of `CAP_SYS_NICE`), only the nice value
/// is set.
pub fn set_current(nice: i32, slice: Option<Duration>) -> Result<(), PriorityError> {
    imp::set_current(nice, slice)
}

/// Gives the calling thread [`LATENCY_SLICE`] and keeps its nice value: for
/// the request handlers' threads (a runtime's `on_thread_start`), which
/// are on an acknowledgement's path too.
pub fn latency_sensitive() {
    let nice = imp::current_nice();
    if let Err(e) = set_current(nice, Some(LATENCY_SLICE)) {
        tracing::debug!("could not shorten the time slice of a handler thread: {e}");
    }
}

/// The time slice the kernel shows for a thread: `se.slice` in the
/// `sched` file of its `/proc` directory (`/proc/<pid>/task/<tid>`, or
/// `/proc/thread-self`); `None` where the kernel does not show it (before
/// Linux 6.12, or without `CONFIG_SCHED_DEBUG`).
pub fn shown_slice(task: &std::path::Path) -> Option<Duration> {
    let text = std::fs::read_to_string(task.join("sched")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        let ns = (k.trim() == "se.slice").then(|| v.trim().parse::<f64>().ok())??;
        Some(Duration::from_nanos(ns as u64))
    })
}

#[cfg(target_os = "linux")]
mod imp {
    use super::PriorityError;
    use std::time::Duration;

    /// `struct sched_attr`, first version (`SCHED_ATTR_SIZE_VER0`, 48 bytes),
    /// from `include/uapi/linux/sched/types.h`.
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        /// For `SCHED_OTHER`, the requested slice in nanoseconds (0: the
        /// default).
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
    }

    const SCHED_OTHER: u32 = 0;

    pub(super) fn set_current(nice: i32, slice: Option<Duration>) -> Result<(), PriorityError> {
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            sched_policy: SCHED_OTHER,
            sched_flags: 0,
            sched_nice: nice,
            sched_priority: 0,
            sched_runtime: slice.map_or(0, |s| u64::try_from(s.as_nanos()).unwrap_or(u64::MAX)),
            sched_deadline: 0,
            sched_period: 0,
        };
        // SAFETY: `attr` is a valid `sched_attr` of the size it declares,
        // alive for the call; pid 0 is the calling thread; flags are 0.
        // The kernel only reads it.
        let r =
            unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(PriorityError::Refused(e));
        }
        // No `sched_setattr` (a sandbox's filter, an old kernel): the nice
        // value alone, as before the slices.
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice)
            .map_err(|e| PriorityError::Refused(e.into()))
    }

    pub(super) fn current_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::PriorityError;
    use std::time::Duration;

    pub(super) fn set_current(_nice: i32, _slice: Option<Duration>) -> Result<(), PriorityError> {
        Ok(())
    }

    pub(super) fn current_nice() -> i32 {
        0
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn my_slice() -> Option<u64> {
        shown_slice(std::path::Path::new("/proc/thread-self")).map(|d| d.as_nanos() as u64)
    }

    #[test]
    fn a_thread_gets_its_nice_value_and_slice() {
        std::thread::spawn(|| {
            // Lowering the priority needs no privilege.
            set_current(5, Some(Duration::from_micros(300))).unwrap();
            assert_eq!(imp::current_nice(), 5);
            // Shown where the kernel has custom slices.
            if let Some(slice) = my_slice() {
                assert_eq!(slice, 300_000);
            }
            latency_sensitive();
            assert_eq!(imp::current_nice(), 5, "the nice value is kept");
            if let Some(slice) = my_slice() {
                assert_eq!(slice, LATENCY_SLICE.as_nanos() as u64);
            }
        })
        .join()
        .unwrap();
    }
}
