//! How much memory a computation may take: dense cost matrices are refused up front when
//! they cannot fit, instead of aborting the process in the allocator.

use crate::EvalError;

/// Bytes the system can give without swapping (`MemAvailable` of `/proc/meminfo`), `None`
/// where that cannot be read (systems without `/proc`).
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Refuses `bytes` for `what` when they exceed the available memory.
///
/// # Errors
/// [`EvalError::TooLarge`] with both numbers.
pub fn ensure_fits(what: &str, bytes: u64) -> Result<(), EvalError> {
    match available_bytes() {
        Some(available) if bytes > available => Err(EvalError::TooLarge {
            what: what.to_string(),
            needed: bytes,
            available,
        }),
        _ => Ok(()),
    }
}

/// A byte count for people: `12.8 GB`, `640 MB`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}
