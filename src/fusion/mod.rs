//! The fusion layer (burn), the only layer that imports burn: W-DUALMINE's parts and the
//! assembled model, its weights, the Fuser engine (device choice, batched volume fusion),
//! image-pair fusion, and training (loss, batch sampler, trainer with checkpoints).

pub mod activation;
pub mod conv_backend;
pub mod conv_cpu;
pub mod conv_direct;
pub mod conv_weight_direct;
pub mod decoder;
pub mod detail_stack;
pub mod encoder;
pub mod experts;
pub mod freed_memory;
pub mod fuser;
pub mod gemm_sums;
pub mod group_norm;
pub mod group_norm_training;
pub mod haar;
pub mod haar_training;
pub mod images;
pub mod loss;
pub mod mixer;
pub mod model;
pub mod reliability;
pub mod sampler;
pub mod shipped;
pub mod slicing;
pub mod train;
pub mod weights;

use burn::tensor::Tensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Whether `device` is burn's CPU backend without autodiff — fusion on the CPU, where this
/// project's slice kernels (GroupNorm, Haar) replace burn's tensor compositions.
pub(crate) fn is_plain_cpu(device: &burn::tensor::Device) -> bool {
    !device.is_autodiff() && *device == burn::tensor::Device::flex()
}

/// `len` values written once in parallel, in `runs` runs of equal length: run `j`'s values are
/// `value(j, [x, …])` over the `I` slices `inputs(j)` side by side, each as long as the run. No
/// zeroing pass first (`vec![0.0; len]` zeroes on the calling thread, which cost the training
/// step's elementwise kernels as much as their arithmetic). The loop over a run is compiled for
/// AVX-512 where the CPU has it ([`with_wide_vectors`]).
pub(crate) fn written<'a, const I: usize>(
    len: usize,
    runs: usize,
    inputs: impl Fn(usize) -> [&'a [f32]; I] + Sync,
    value: impl Fn(usize, [f32; I]) -> f32 + Sync,
) -> Vec<f32> {
    by_runs(len, runs, |j, out| {
        let (inputs, value) = (inputs(j), &value);
        assert!(
            inputs.iter().all(|input| input.len() == out.len()),
            "input runs"
        );
        // Moved in: the slices' bounds are the loop's own, not reread from memory.
        with_wide_vectors(move || {
            for (i, o) in out.iter_mut().enumerate() {
                o.write(value(j, inputs.map(|input| input[i])));
            }
        });
    })
}

/// `len` values in `runs` runs of equal length, run `j` filled with `value(j)`, in parallel (no
/// zeroing pass first).
pub(crate) fn filled(len: usize, runs: usize, value: impl Fn(usize) -> f32 + Sync) -> Vec<f32> {
    by_runs(len, runs, |j, out| out.fill(MaybeUninit::new(value(j))))
}

/// `len` new values in `runs` runs of equal length, `write(j, run)` writing every value of run
/// `j`, the runs in parallel.
fn by_runs(
    len: usize,
    runs: usize,
    write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let run = len / runs.max(1);
    assert_eq!(run * runs, len, "runs tile the buffer");
    let mut buffer: Vec<f32> = Vec::with_capacity(len);
    if len > 0 {
        buffer.spare_capacity_mut()[..len]
            .par_chunks_mut(run)
            .enumerate()
            .for_each(|(j, out)| write(j, out));
    }
    // SAFETY: the runs tile the first `len` values and `write` wrote each in full (`written`
    // checks its inputs have the run's length; `filled` fills the run).
    unsafe { buffer.set_len(len) };
    buffer
}

/// Whether this CPU runs AVX-512 (foundation) instructions.
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `f()`, compiled for AVX-512 where the CPU has it, else for the build's baseline (SSE2 on
/// x86-64). For the elementwise loops of the CPU kernels: inlined into this function, their
/// loops vectorise 16 lanes wide instead of 4 (or not at all where the baseline's code kept
/// them scalar). Every lane does the same IEEE operations as the scalar code (Rust never fuses
/// a product and a sum), so the values are the same bits either way.
#[inline(always)]
pub(crate) fn with_wide_vectors<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        /// `f()` with AVX-512 enabled for the code inlined into it.
        #[target_feature(enable = "avx512f")]
        fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if has_avx512() {
            // SAFETY: the CPU has AVX-512 (checked on the line above).
            return unsafe { wide(f) };
        }
    }
    f()
}

/// A CPU tensor's values in a contiguous tensor: itself, or a copy when strided.
pub(crate) fn contiguous(t: burn::backend::flex::FlexTensor) -> burn::backend::flex::FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a contiguous f32 CPU tensor. The CPU operations of this layer route only f32
/// tensors to their kernels (each checks the type first) and make them contiguous.
pub(crate) fn f32s(t: &burn::backend::flex::FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("the CPU operations run on contiguous f32 tensors")
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

/// The first value of a tensor on the host (a loss term, a stored scalar); NaN when it has
/// none.
pub(crate) fn first_value(t: Tensor<1>) -> f32 {
    t.into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN)
}

/// A tensor's values on the host, for tests.
#[cfg(test)]
pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}

/// `len` values in [−1, 1] from a small deterministic generator (xorshift), for kernel tests.
#[cfg(test)]
pub(crate) fn test_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// The geometry of a 3×3 `same` convolution of `batch` images of `c_in` × `h` × `w` into
/// `c_out` channels, for kernel tests.
#[cfg(test)]
pub(crate) fn same_conv_shape([batch, c_in, c_out, h, w]: [usize; 5]) -> conv_cpu::ConvShape {
    conv_cpu::ConvShape::new(
        [batch, c_in, h, w],
        [c_out, c_in, 3, 3],
        [1, 1],
        [(1, 1), (1, 1)],
        [1, 1],
        1,
    )
    .expect("supported")
}

/// How many values of `ours` differ in their bits from `reference`'s, for kernel tests.
#[cfg(test)]
pub(crate) fn differing_bits(ours: &[f32], reference: &[f32]) -> usize {
    assert_eq!(ours.len(), reference.len());
    ours.iter()
        .zip(reference)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count()
}

/// Asserts `|ours − reference|` is at most `tolerance` times the reference's largest
/// magnitude, for tests of kernels against burn's own operations.
#[cfg(test)]
pub(crate) fn assert_close(what: &str, ours: Vec<f32>, reference: Vec<f32>, tolerance: f32) {
    assert_eq!(ours.len(), reference.len(), "{what}: size");
    let scale = reference
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-6);
    let worst = ours
        .iter()
        .zip(&reference)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= tolerance * scale,
        "{what}: max difference {worst} against magnitude {scale}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

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
