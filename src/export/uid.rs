//! New DICOM UIDs in the `2.25.` (UUID-derived) root, unique without a registered prefix.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh UID: `2.25.` followed by a random 128-bit number (at most 44 characters).
pub fn new_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(count);
        hasher.write_u32(std::process::id());
        hasher.write_usize(i);
        *half = hasher.finish();
    }
    // Keep the value below 2^127 so the UID never exceeds 64 characters (5 + 39 digits).
    let value = (u128::from(halves[0] >> 1) << 64) | u128::from(halves[1]);
    format!("2.25.{value}")
}

/// The UID that replaces `uid` under anonymisation with `secret`: the same input gives the
/// same output (references stay consistent), and without the secret it cannot be traced back.
pub fn remapped(uid: &str, secret: u128) -> String {
    if uid.is_empty() {
        return String::new();
    }
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        // SipHash with fixed keys is deterministic; the secret keys it.
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write_u128(secret);
        hasher.write_usize(i);
        hasher.write(uid.as_bytes());
        *half = hasher.finish();
    }
    let value = (u128::from(halves[0] >> 1) << 64) | u128::from(halves[1]);
    format!("2.25.{value}")
}

/// A random secret for [`remapped`] (one per export).
pub fn new_secret() -> u128 {
    let uid = new_uid();
    uid[5..].parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remapping_is_consistent_and_keyed() {
        let a = remapped("1.2.840.1", 7);
        assert_eq!(a, remapped("1.2.840.1", 7));
        assert_ne!(a, remapped("1.2.840.2", 7));
        assert_ne!(a, remapped("1.2.840.1", 8));
        assert!(a.starts_with("2.25.") && a.len() <= 64);
        assert_eq!(remapped("", 7), "");
    }

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        assert!(a.len() <= 64);
        assert!(a.starts_with("2.25.") && a[5..].chars().all(|c| c.is_ascii_digit()));
        assert!(!a[5..].starts_with('0') || a.len() == 6);
    }
}
