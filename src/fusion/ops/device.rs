//! Which device the work runs on, and where its CPU work runs: whether a device is burn's CPU
//! backend (with or without autodiff — the operations take their own CPU paths there), and
//! running a forward pass or a training step on one of rayon's workers with another kept awake.

/// Whether `device` is burn's CPU backend without autodiff — fusion on the CPU, where this
/// project's slice kernels (GroupNorm, Haar) replace burn's tensor compositions.
pub(crate) fn is_plain_cpu(device: &burn::tensor::Device) -> bool {
    !device.is_autodiff() && *device == burn::tensor::Device::flex()
}

/// Whether `device` is burn's CPU backend under autodiff — training on the CPU, where this
/// layer's training operations (ReLU, the contrasts, GroupNorm's backward) replace burn's
/// compositions. Fusion keeps its own path: there the two encoders already run side by side,
/// and the pair bench measured no gain from the operations (README).
pub(crate) fn is_cpu_training(device: &burn::tensor::Device) -> bool {
    *device == burn::tensor::Device::flex().autodiff()
}

/// Whether `device` is burn's CPU backend, with or without autodiff.
pub(crate) fn is_cpu(device: &burn::tensor::Device) -> bool {
    is_plain_cpu(device) || is_cpu_training(device)
}

/// `f()` run on one of rayon's worker threads when `device` is burn's CPU backend (with or
/// without autodiff), here elsewhere. The CPU path's kernels split their work with rayon:
/// called from a worker, each one starts at once on that thread and wakes the other; called
/// from another thread, each is handed to the pool and the caller sleeps until it is done —
/// thread switches around every kernel, hundreds of them per training step (measured: a
/// training step 306–324 → 279–282 ms). The kernels split their work the same way on any
/// thread, so values do not change.
pub fn on_cpu_workers<R: Send>(device: &burn::tensor::Device, f: impl FnOnce() -> R + Send) -> R {
    if !is_cpu(device) || rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::join(|| with_a_worker_awake(f), || ()).0
}

/// `f()` run here (a rayon worker) while one other worker of the pool, if there is one, waits
/// for work awake instead of asleep. Between two parallel kernels an idle rayon worker goes to
/// sleep after some thirty rounds of looking for work, and the next kernel must wake it
/// through the kernel (a futex call on the starting thread: 5 % of a training step's time,
/// measured). Here that worker polls for jobs (`rayon::yield_now`) until `f` returns.
/// Only one worker is kept: a second poller could be taken up by the first, or by a waiting
/// worker of `f`'s own jobs, and hold that thread's stack until `f` ends. Which thread runs
/// which job does not change the kernels' split of the work, so values do not change.
fn with_a_worker_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Sets the flag when dropped: `f` returned or unwound.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    let caller = rayon::current_thread_index();
    let poll = || {
        // Run by the caller itself (it took the job back before another worker did): nothing
        // to keep awake, and polling here would wait on `f`, which this thread is running.
        if rayon::current_thread_index() == caller {
            return;
        }
        while !done.load(Ordering::Acquire) {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::hint::spin_loop();
            }
        }
    };
    rayon::join(
        || {
            let _done = Done(&done);
            f()
        },
        poll,
    )
    .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use rayon::prelude::*;

    /// The work runs on a worker, nested parallel work completes while the other worker is
    /// kept awake, and a panic in the work comes back to the caller instead of leaving the
    /// awake worker polling forever.
    #[test]
    fn cpu_work_runs_on_a_worker_and_returns_or_unwinds() {
        let device = Device::flex();
        let (on_worker, sum) = on_cpu_workers(&device, || {
            let sum: u64 = (0..100_000u64).into_par_iter().map(|v| v % 7).sum();
            (rayon::current_thread_index().is_some(), sum)
        });
        assert!(on_worker);
        assert_eq!(sum, (0..100_000u64).map(|v| v % 7).sum::<u64>());
        let unwound = std::panic::catch_unwind(|| {
            on_cpu_workers(&device, || -> u32 { panic!("work failed") })
        });
        assert!(unwound.is_err());
        assert_eq!(on_cpu_workers(&device, || 7), 7, "the pool still works");
    }

    /// With one worker the poller finds itself on the caller's thread and returns; with
    /// several, one polls and nested parallel work completes.
    #[test]
    fn a_worker_kept_awake_in_pools_of_one_to_four_threads() {
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let sum = pool.install(|| {
                with_a_worker_awake(|| (0..10_000u64).into_par_iter().map(|v| v * 3).sum::<u64>())
            });
            assert_eq!(sum, 3 * (0..10_000u64).sum::<u64>(), "{threads} threads");
        }
    }
}
