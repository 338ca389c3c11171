//! Where a bench phase's CPU went: the process's and each thread's, read
//! from `/proc/self` (Linux; elsewhere nothing is reported).

/// CPU time (user + system) this process used so far, from /proc/self/stat
/// (Linux; clock ticks of 1/100 s).
pub(super) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

/// CPU time per thread name (threads of one name added up, e.g. RocksDB's
/// `rocksdb:high` or the runtime's workers), from each thread's
/// `/proc/self/task/*/schedstat` (Linux; nanoseconds on a CPU).
pub(super) fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
        if let Some(ns) = ns {
            *out.entry(name.trim().to_string()).or_insert(0.0) += ns / 1e9;
        }
    }
    out
}
