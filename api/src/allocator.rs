//! Settings of mimalloc, the allocator of `ledgerd` and `ledgerctl`
//! (each declares it as its `#[global_allocator]`).
//!
//! mimalloc gives memory that stayed free for `purge_delay` milliseconds
//! back to the OS (v3's default: 1 s). Memory given back is paged in again,
//! one zeroed page per fault, by whichever thread allocates it next; after
//! a pause in load that can be a thread an acknowledgement waits for.
//! `keep_freed_ms` in ledgerd's settings sets a longer delay
//! ([`keep_freed_memory`]): off by default, as it trades resident memory
//! for that latency.
//!
//! It is built without transparent huge pages (the `no_thp` feature,
//! Cargo.toml): by default mimalloc marks its memory `MADV_HUGEPAGE`, and
//! the first touch of each 2 MiB of it then zeroes the whole 2 MiB in one
//! fault on whichever thread touched it. Without the mark only the 4 KiB
//! pages touched are zeroed, and the process keeps the system's own huge
//! page policy (mimalloc's `allow_thp` option would have turned it off for
//! the whole process, RocksDB's allocations included).
//!
//! RocksDB's C++ allocates with the C library's malloc, not mimalloc.
//! glibc gives each thread that allocates at once an arena of its own (up
//! to eight per core) and keeps what is freed in it: the memtables and
//! blocks RocksDB's flush and compaction threads free stayed resident,
//! some 70 MB of `ledgerd`'s RSS under load. [`limit_c_arenas`] caps the
//! arenas at two (`M_ARENA_MAX`), so freed memory is reused rather than
//! held per thread.
//!
//! mimalloc reads its environment (`MIMALLOC_PURGE_DELAY`) only when the
//! process starts, so the setting is made through its C API. The option is
//! named by its position in mimalloc v3's `mi_option_t`; a test checks
//! that the position still holds v3's `purge_delay` default.

#![allow(unsafe_code)]

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};
use std::ffi::c_long;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (mimalloc.h;
/// the Rust bindings still number the options as v2 did).
const PURGE_DELAY: mi_option_t = 15;

/// Keeps freed memory in the process for `ms` milliseconds before giving it
/// back to the OS (-1: never). Call it first thing in `main`.
pub fn keep_freed_memory(ms: c_long) {
    // SAFETY: mi_option_set only stores the value in mimalloc's option
    // table; the option index is in range (checked by the test below).
    unsafe { mi_option_set(PURGE_DELAY, ms) }
}

/// Caps the C library's malloc arenas at `n` (glibc on Linux; elsewhere
/// nothing). Call it first thing in `main`, before threads start.
pub fn limit_c_arenas(n: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; an
    // unknown or refused value leaves it unchanged.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = n;
}

/// The purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: mi_option_get only reads mimalloc's option table.
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_mimalloc_v3s_purge_delay() {
        // v3's default purge delay, unless the environment set one: if the
        // position named another option, this would read its value.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1000);
        }
        keep_freed_memory(60_000);
        assert_eq!(purge_delay_ms(), 60_000);
    }

    /// The `VmFlags` of the mapping of this process that holds `addr`,
    /// from /proc/self/smaps.
    fn vm_flags(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or_default();
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = lo <= addr && addr < hi;
                    continue;
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some(flags.trim().to_string());
                }
            }
        }
        None
    }

    #[test]
    fn mimalloc_memory_is_not_marked_for_huge_pages() {
        // Large enough to come from a fresh OS allocation of mimalloc's.
        let size = 64 << 20;
        // SAFETY: a plain allocation, freed below; nothing reads it.
        let p = unsafe { libmimalloc_sys::mi_malloc(size) };
        assert!(!p.is_null());
        let flags = vm_flags(p as usize);
        // SAFETY: `p` came from mi_malloc and is freed once.
        unsafe { libmimalloc_sys::mi_free(p) };
        let flags = flags.expect("the allocation's mapping is in /proc/self/smaps");
        // `hg`: madvise(MADV_HUGEPAGE) was called on the mapping.
        assert!(
            !flags.split_whitespace().any(|f| f == "hg"),
            "mimalloc marked its memory for huge pages: VmFlags {flags}"
        );
    }
}
