//! Peak-memory measurement shared by the benchmarks: the process's VmHWM, reset after
//! returning glibc's freed heap to the OS, so that each phase's peak is its own. The
//! benches allocate with mimalloc (`idsync::Allocator`), which glibc's trim does not
//! reach: there a phase's peak can include what mimalloc kept from the phase before.

/// Returns freed heap to the OS, then resets the peak, so that each phase's peak is its own
/// and not what the allocator kept from the phase before.
pub fn reset_peak_memory() {
    // SAFETY: malloc_trim only releases free memory held by glibc's allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident memory since the last reset, in MiB.
pub fn peak_memory_mib() -> f64 {
    status_mib("VmHWM:")
}

/// The resident memory now, in MiB: what a bench holds before a phase (a fake IdP's
/// directory, say), to tell apart from what the phase itself takes.
pub fn resident_memory_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
