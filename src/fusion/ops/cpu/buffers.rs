//! The CPU operations' buffers: new values written once in parallel without a zeroing pass
//! first (on one thread, zeroing cost the training step's elementwise kernels as much as their
//! arithmetic), a CPU tensor's values as a slice, and a pointer that parallel tasks write
//! disjoint parts of one output through.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::simd::with_wide_vectors;

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

/// `O` new buffers the size of `inputs` (`runs · parts · part` values each), written once in
/// parallel, one run a task: value `i` of part `k` of run `j` is `per_part(j, k)` of the inputs'
/// values there, one value per output. `per_part` is called once per part, so what it takes out
/// of slices (a group's and a channel's statistics) is hoisted out of the loop over the part's
/// values, which holds only the arithmetic and is compiled for AVX-512 where the CPU has it
/// ([`with_wide_vectors`]; the same operations lane by lane, so the same bits).
pub(crate) fn mapped_in_parts<const I: usize, const O: usize, F: Fn([f32; I]) -> [f32; O]>(
    [runs, parts, part]: [usize; 3],
    inputs: [&[f32]; I],
    per_part: impl Fn(usize, usize) -> F + Sync,
) -> [Vec<f32>; O] {
    let run = parts * part;
    let len = runs * run;
    assert!(inputs.iter().all(|input| input.len() == len), "input sizes");
    let mut buffers: [Vec<f32>; O] = std::array::from_fn(|_| Vec::with_capacity(len));
    {
        let mut columns = buffers
            .each_mut()
            .map(|buffer| buffer.spare_capacity_mut()[..len].chunks_mut(run));
        let runs: Vec<[&mut [MaybeUninit<f32>]; O]> = (0..runs)
            .map(|_| std::array::from_fn(|k| columns[k].next().unwrap_or_default()))
            .collect();
        runs.into_par_iter()
            .enumerate()
            .for_each(|(j, mut outputs)| {
                for k in 0..parts {
                    let at = k * part;
                    let inputs = inputs.map(|input| &input[j * run + at..][..part]);
                    let mut outputs = outputs.each_mut().map(|output| &mut output[at..][..part]);
                    let value = per_part(j, k);
                    // Moved in: the slices' bounds are the loop's own, not reread from memory.
                    with_wide_vectors(move || {
                        for i in 0..part {
                            let values = value(inputs.map(|input| input[i]));
                            for (output, v) in outputs.iter_mut().zip(values) {
                                output[i].write(v);
                            }
                        }
                    });
                }
            });
    }
    for buffer in &mut buffers {
        // SAFETY: the loops above wrote every value of every part of every run (`parts` parts
        // of `part` values make a run), and the runs tile the first `len` values.
        unsafe { buffer.set_len(len) };
    }
    buffers
}

/// A CPU tensor's values in a contiguous tensor: itself, or a copy when strided.
pub(crate) fn contiguous(t: burn::backend::flex::FlexTensor) -> burn::backend::flex::FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The values of a contiguous f32 CPU tensor. The CPU operations route only f32 tensors to
/// their kernels (each checks the type first) and make them contiguous.
pub(crate) fn f32s(t: &burn::backend::flex::FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("the CPU operations run on contiguous f32 tensors")
}

/// A pointer into an output buffer that rayon tasks write disjoint parts of.
#[derive(Clone, Copy)]
pub(crate) struct Disjoint(pub(crate) *mut f32);
// SAFETY: every task writes only its own (image, rows) region or channel plane; see the callers.
unsafe impl Send for Disjoint {}
// SAFETY: as for `Send`: the tasks sharing it write disjoint parts.
unsafe impl Sync for Disjoint {}

impl Disjoint {
    /// The address `offset` elements in (taking `self` whole, so closures capture the `Sync`
    /// wrapper rather than its raw pointer).
    ///
    /// # Safety
    /// `offset` must lie inside the buffer.
    pub(crate) unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(offset) }
    }
}
