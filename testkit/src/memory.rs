//! Peak-memory measurement shared by the benchmarks: the process's VmHWM, reset after
//! returning glibc's freed heap to the OS, so that each phase's peak is its own. The
//! benches allocate with mimalloc (`idsync::Allocator`), which glibc's trim does not
//! reach: there a phase's peak can include what mimalloc kept from the phase before.
//! [`PhaseTimer`] prints a run's phases with the time and the peak of each.

use std::sync::Mutex;
use std::time::Instant;

use idsync::sync::Progress;

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

/// Records when each phase of a run starts and the peak memory of each, to print where
/// the time and the memory go. The peak is reset at each phase boundary without returning
/// freed heap to the OS (that would change what it measures), so a phase's peak includes
/// what the phases before it still hold.
pub struct PhaseTimer(Mutex<Vec<(String, Instant, f64)>>);

impl Progress for PhaseTimer {
    fn phase(&self, name: &str) {
        if let Ok(mut phases) = self.0.lock() {
            if let Some(last) = phases.last_mut() {
                last.2 = peak_memory_mib();
            }
            reset_peak_without_trim();
            phases.push((name.to_string(), Instant::now(), 0.0));
        }
    }
}

impl PhaseTimer {
    /// A timer whose first phase, until the run names one, is "starting".
    pub fn starting() -> PhaseTimer {
        PhaseTimer(Mutex::new(vec![(
            "starting".to_string(),
            Instant::now(),
            0.0,
        )]))
    }

    /// `name 1.23s/456MiB, ...`: each phase's time (until the next, the last until `end`)
    /// and peak.
    pub fn summary(&self, end: Instant) -> String {
        let mut phases = self.0.lock().map(|p| p.clone()).unwrap_or_default();
        if let Some(last) = phases.last_mut() {
            last.2 = peak_memory_mib();
        }
        let mut parts = Vec::new();
        for (i, (name, start, peak)) in phases.iter().enumerate() {
            let stop = phases.get(i + 1).map_or(end, |next| next.1);
            parts.push(format!(
                "{name} {:.2}s/{peak:.0}MiB",
                (stop - *start).as_secs_f64()
            ));
        }
        parts.join(", ")
    }

    /// The peak over all phases: the run's peak.
    pub fn peak(&self) -> f64 {
        let phases = self.0.lock().map(|p| p.clone()).unwrap_or_default();
        phases.iter().map(|p| p.2).fold(peak_memory_mib(), f64::max)
    }
}

/// Resets the process's peak resident memory to what it holds now.
fn reset_peak_without_trim() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
