//! Keeping freed memory in the process while the network runs on the CPU.
//!
//! The binary and the benches allocate with mimalloc (`main.rs`). By default mimalloc hands
//! freed memory back to the system after a short delay, and the network's CPU path frees and
//! allocates tensors of megabytes at every layer: each one handed back comes back from the
//! kernel as fresh pages, faulted in and zeroed on first touch. Measured with perf: page
//! clearing took 12 % of a volume fusion (STS_001) and about 7 % of a training step. While a
//! [`KeepFreedMemory`] guard lives, freed memory stays with the process for reuse; when the
//! last guard drops, the usual policy returns and the pages are handed back at once, so an
//! idle viewer does not sit on the fusion's high-water mark.
//!
//! Where mimalloc is linked but not the global allocator (the library's tests) the calls
//! only set options of an unused heap.

use std::sync::Mutex;

use libmimalloc_sys::{mi_collect, mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` of mimalloc 3 (`mimalloc.h`): milliseconds before freed memory is
/// handed back, −1 for never. libmimalloc-sys 0.1.49 does not name it.
pub const PURGE_DELAY: mi_option_t = 15;

/// Guards alive, and the purge delay to restore when the last one drops.
static GUARDS: Mutex<(usize, std::os::raw::c_long)> = Mutex::new((0, 0));

/// While alive, memory freed by any thread stays in the process (see the module docs).
#[must_use = "freed memory is kept only while the guard lives"]
pub struct KeepFreedMemory(());

impl KeepFreedMemory {
    pub fn new() -> Self {
        let mut guards = GUARDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guards.0 == 0 {
            // SAFETY: plain option calls of the linked allocator, valid at any time.
            unsafe {
                guards.1 = mi_option_get(PURGE_DELAY);
                mi_option_set(PURGE_DELAY, -1);
            }
        }
        guards.0 += 1;
        Self(())
    }
}

/// mimalloc's purge delay now in effect: milliseconds before freed memory is handed back, −1
/// while a guard keeps it.
pub fn purge_delay() -> std::os::raw::c_long {
    // SAFETY: an option read of the linked allocator, valid at any time.
    unsafe { mi_option_get(PURGE_DELAY) }
}

impl Default for KeepFreedMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for KeepFreedMemory {
    fn drop(&mut self) {
        let mut guards = GUARDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guards.0 -= 1;
        if guards.0 == 0 {
            // SAFETY: as in `new`; `mi_collect` may run on any thread.
            unsafe {
                mi_option_set(PURGE_DELAY, guards.1);
                mi_collect(true);
            }
        }
    }
}
