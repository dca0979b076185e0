//! `KeepFreedMemory` switches mimalloc's purging off while a guard lives and restores it when
//! the last one drops. Its own test binary: no other test's fusion holds a guard meanwhile.

use dualmine::fusion::ops::cpu::freed_memory::{KeepFreedMemory, purge_delay};

#[test]
fn guards_nest_and_restore_the_policy() {
    let before = purge_delay();
    assert!(
        before >= 0,
        "mimalloc's default hands memory back (delay {before})"
    );
    let outer = KeepFreedMemory::new();
    assert_eq!(purge_delay(), -1);
    let inner = KeepFreedMemory::new();
    drop(outer);
    assert_eq!(purge_delay(), -1, "kept while a guard lives");
    drop(inner);
    assert_eq!(purge_delay(), before);
}
