//! Fusion as a background job that follows the reader: the network runs on its own thread,
//! a few slices at a time, always on the slices nearest the one in view (the *focus*, which
//! the viewer moves as the reader scrolls or clicks in another plane), and sends each batch
//! of outputs back as soon as it is computed, so the viewer shows results slice by slice
//! while it keeps responding. The job can be paused and cancelled.
//!
//! A volume is fused with one mix of its studies (`Fuser::volume_gains`), taken from a
//! sample of 16 slices — 16 network passes. So that the reader does not wait for them, the
//! slice in view is fused first with its own mix and shown as *provisional*; the sample
//! follows (the slice in view again first whenever the reader moves to one not yet fused),
//! then every slice, provisional ones included, with the volume's mix, nearest the focus
//! first.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::tensor::Device;

use crate::fusion::fuser::{Fuser, FusionMaps, GainSample, has_foreground};
use crate::fusion::ops::cpu::priority;
use crate::fusion::shipped;
use crate::volume::Volume;
use crate::volume::intensity::Window;

/// Slices per network call: two small ones, one above [`LARGE_SLICE`] pixels (a large
/// slice keeps the cores busy alone, and a batch in flight delays the slice the reader
/// jumps to).
const BATCH: usize = 2;
const LARGE_SLICE: usize = 256 * 256;

/// How long the slice in view must stay the same before it counts as where the reader is
/// looking (rather than scrolling through) and is fused with every core.
const STILL: Duration = Duration::from_millis(150);

/// What the network is given: two studies on one grid, in the network's order, each with
/// the window that maps it to 0..1.
pub struct FusionInputs {
    /// The network's A (CT or emission study) and B (MR), with their default windows
    /// (`Window::default_for`: what the viewer shows by default and the network was trained
    /// on). The job maps each slice through them as it fuses it.
    pub a: (Arc<Volume>, Window),
    pub b: (Arc<Volume>, Window),
    pub dims: [usize; 3],
    /// Which built-in model (one of `shipped::TASKS`).
    pub task: &'static str,
    /// True when the viewer's study A is the network's B (the outputs' A/B swap back).
    pub swapped: bool,
    /// The detail control d (0 faithful … 1 most local detail).
    pub detail: f32,
    /// The slice fused first (the one in view when the job starts); the others follow
    /// nearest the focus first ([`FusionJob::set_focus`]).
    pub first_slice: usize,
    /// The decoder's gains for the whole volume when an earlier job on the same studies
    /// took them (they do not depend on d): a new detail then starts with the slice in view.
    pub gains: Option<Option<[f32; 3]>>,
}

impl FusionInputs {
    /// Orders two studies on one grid the way the network was trained
    /// (`shipped::swapped_for_network`: A the CT/PET/SPECT and B the MR, or A the PET and B
    /// the CT); each comes with its default window (`Window::default_for`; the viewer's study
    /// layers keep theirs, so that it is not computed again).
    pub fn new(a: (&Arc<Volume>, Window), b: (&Arc<Volume>, Window)) -> Self {
        let swapped = shipped::swapped_for_network([&**a.0, &**b.0]);
        let (na, nb) = if swapped { (b, a) } else { (a, b) };
        // The viewer fuses gray studies only, so a task always exists.
        let task = shipped::task_for([&**na.0, &**nb.0]).unwrap_or("ct-mri");
        Self {
            a: (na.0.clone(), na.1),
            b: (nb.0.clone(), nb.1),
            dims: a.0.geometry.dims,
            task,
            swapped,
            detail: shipped::default_detail(task),
            first_slice: 0,
            gains: None,
        }
    }

    /// Slices `first..first + count` of each study mapped to 0..1, x fastest.
    fn slab(&self, first: usize, count: usize) -> (Vec<f32>, Vec<f32>) {
        let slice = self.dims[0] * self.dims[1];
        let voxels = first * slice..(first + count) * slice;
        let map = |(volume, window): &(Arc<Volume>, Window)| -> Vec<f32> {
            volume.data[voxels.clone()]
                .iter()
                .map(|v| window.normalise(*v))
                .collect()
        };
        (map(&self.a), map(&self.b))
    }
}

/// A message from the job.
pub enum JobEvent {
    /// The decoder's gains taken for the whole volume (`None`: none could be taken).
    Gains(Option<[f32; 3]>),
    /// Outputs for slices `first..first + n`; `provisional`: fused with their own mix before
    /// the volume's was known (they come again with it).
    Batch {
        first: usize,
        maps: FusionMaps,
        provisional: bool,
    },
    Finished,
    Failed(String),
}

/// How far a slice has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceState {
    Pending,
    /// Fused with its own mix, before the volume's was known.
    Provisional,
    /// Fused with the volume's mix.
    Done,
}

/// Which slices are fused, and which batch comes next: the slices nearest the focus first.
#[derive(Clone, Debug)]
pub struct Schedule {
    states: Vec<SliceState>,
    /// Slices per batch at most.
    batch: usize,
}

impl Schedule {
    pub fn new(slices: usize) -> Self {
        Self::with_batch(slices, BATCH)
    }

    /// Batches of at most `batch` (1 or 2) slices.
    pub fn with_batch(slices: usize, batch: usize) -> Self {
        Self {
            states: vec![SliceState::Pending; slices],
            batch,
        }
    }

    pub fn state(&self, slice: usize) -> Option<SliceState> {
        self.states.get(slice).copied()
    }

    /// Marks slices `first..first + count`; returns how many became done.
    pub fn mark(&mut self, first: usize, count: usize, state: SliceState) -> usize {
        let end = (first + count).min(self.states.len());
        let mut newly_done = 0;
        for slot in &mut self.states[first.min(end)..end] {
            newly_done += usize::from(state == SliceState::Done && *slot != SliceState::Done);
            *slot = state;
        }
        newly_done
    }

    /// The next batch as (first slice, count): the slice not yet done that is nearest
    /// `focus` (the one after it before the one before it, at equal distance), with the next
    /// slice away from the focus when that is not done either; `None` when all are done.
    pub fn next_batch(&self, focus: usize) -> Option<(usize, usize)> {
        let n = self.states.len();
        let focus = focus.min(n.checked_sub(1)?);
        let open = |k: usize| self.states[k] != SliceState::Done;
        let (nearest, upward) = (0..n).find_map(|distance| {
            let after = focus + distance;
            let before = focus.checked_sub(distance);
            if after < n && open(after) {
                Some((after, true))
            } else {
                before.filter(|&k| open(k)).map(|k| (k, false))
            }
        })?;
        let mut batch = (nearest, 1);
        if self.batch > 1 {
            if upward && nearest + 1 < n && open(nearest + 1) {
                batch = (nearest, 2);
            } else if !upward && nearest > 0 && open(nearest - 1) {
                batch = (nearest - 1, 2);
            }
        }
        Some(batch)
    }
}

/// What the viewer and the job share: where the reader is (and since when), pause and
/// cancel.
struct Control {
    focus: AtomicUsize,
    /// When the focus last moved (`None`: it has not).
    focus_moved: Mutex<Option<Instant>>,
    cancel: AtomicBool,
    pause: AtomicBool,
    /// The viewer's context, asked to draw a frame whenever the job has something to show.
    waker: Mutex<Option<egui::Context>>,
}

impl Control {
    /// Asks the viewer for a frame (it may be waiting for input or its next progress tick).
    fn wake(&self) {
        if let Some(ctx) = &*self.waker.lock().unwrap_or_else(|e| e.into_inner()) {
            ctx.request_repaint();
        }
    }

    /// Waits while paused; `Err` once cancelled.
    fn wait_while_paused(&self) -> Result<(), String> {
        while self.pause.load(Ordering::Relaxed) && !self.cancel.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err("fusion was cancelled".into());
        }
        Ok(())
    }

    fn focus(&self) -> usize {
        self.focus.load(Ordering::Relaxed)
    }

    fn set_focus(&self, slice: usize) {
        if self.focus.swap(slice, Ordering::Relaxed) != slice {
            *self.focus_moved.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
    }

    /// Whether the focus has not moved for [`STILL`] (the reader is looking, not scrolling).
    fn focus_is_still(&self) -> bool {
        let moved = *self.focus_moved.lock().unwrap_or_else(|e| e.into_inner());
        moved.is_none_or(|at| at.elapsed() >= STILL)
    }
}

/// A running (or finished) fusion.
pub struct FusionJob {
    events: Receiver<JobEvent>,
    control: Arc<Control>,
    pub total: usize,
    /// Slices fused with the volume's mix so far.
    pub done: usize,
    pub started: Instant,
    /// The detail control it fuses at.
    pub detail: f32,
    /// The volume's gains once the job has them (kept for the next job on these studies).
    pub gains: Option<Option<[f32; 3]>>,
    /// Set when the job ended, with how long it ran.
    pub elapsed: Option<Duration>,
    pub error: Option<String>,
    pub swapped: bool,
    pub task: &'static str,
    slice_pixels: usize,
    /// Each slice's state as the viewer has received it.
    received: Schedule,
}

impl FusionJob {
    /// Starts fusing `inputs` with the built-in model for their task on `device`.
    pub fn start(inputs: FusionInputs, device: Device, description: String) -> Self {
        let (sender, events) = channel();
        let total = inputs.dims[2];
        let control = Arc::new(Control {
            focus: AtomicUsize::new(inputs.first_slice),
            focus_moved: Mutex::new(None),
            cancel: AtomicBool::new(false),
            pause: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let slice_pixels = inputs.dims[0] * inputs.dims[1];
        let (swapped, task, detail) = (inputs.swapped, inputs.task, inputs.detail);
        let shared = control.clone();
        let worker = move || {
            // On the CPU backend the network would take every core from the drawing
            // (lavapipe draws on the CPU too). The background runs on every core at a lower
            // priority (it yields whenever the viewer has a frame to draw); the slice the
            // reader is looking at, not fused yet, gets every core at the viewer's priority.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let pool = |name: &'static str, background: bool| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cores)
                    .thread_name(move |i| format!("{name}-{i}"))
                    .start_handler(move |_| {
                        if background {
                            priority::lower_this_thread();
                        }
                    })
                    .build()
                    .ok()
            };
            let urgent = pool("fusion-now", false);
            let fuse = || {
                run(
                    &inputs,
                    device,
                    description,
                    &shared,
                    urgent.as_ref(),
                    &mut |e| {
                        let sent = sender.send(e).is_ok();
                        shared.wake();
                        sent
                    },
                )
            };
            // This thread too: the job's own work between passes is background work.
            priority::lower_this_thread();
            let outcome = match pool("fusion", true) {
                Some(pool) => pool.install(fuse),
                None => fuse(),
            };
            let _ = sender.send(match outcome {
                Ok(()) => JobEvent::Finished,
                Err(e) => JobEvent::Failed(e),
            });
            shared.wake();
        };
        let mut job = Self {
            events,
            control,
            total,
            done: 0,
            started: Instant::now(),
            elapsed: None,
            error: None,
            swapped,
            task,
            detail,
            gains: None,
            slice_pixels,
            received: Schedule::new(total),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("fusion".into())
            .spawn(worker)
        {
            job.error = Some(format!("cannot start fusion: {e}"));
            job.elapsed = Some(Duration::ZERO);
        }
        job
    }

    pub fn is_running(&self) -> bool {
        self.elapsed.is_none()
    }

    /// Has the job ask `ctx` for a frame whenever it sends something (a batch fused, the
    /// end), so that the viewer need not draw frames only to look for them.
    pub fn set_waker(&self, ctx: &egui::Context) {
        let mut waker = self.control.waker.lock().unwrap_or_else(|e| e.into_inner());
        if waker.is_none() {
            *waker = Some(ctx.clone());
        }
    }

    pub fn cancel(&self) {
        self.control.cancel.store(true, Ordering::Relaxed);
    }

    pub fn set_paused(&self, paused: bool) {
        self.control.pause.store(paused, Ordering::Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.control.pause.load(Ordering::Relaxed)
    }

    /// Moves the front of the queue: the slices nearest `slice` are fused next.
    pub fn set_focus(&self, slice: usize) {
        self.control.set_focus(slice);
    }

    /// How far `slice` has come, as received so far.
    pub fn slice_state(&self, slice: usize) -> Option<SliceState> {
        self.received.state(slice)
    }

    /// Batches computed since the last call (the job's bookkeeping is updated).
    pub fn poll(&mut self) -> Vec<(usize, FusionMaps)> {
        let mut batches = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(JobEvent::Batch {
                    first,
                    maps,
                    provisional,
                }) => {
                    let count = maps.fused.len() / self.slice_len();
                    let state = if provisional {
                        SliceState::Provisional
                    } else {
                        SliceState::Done
                    };
                    self.done += self.received.mark(first, count, state);
                    batches.push((first, maps));
                }
                Ok(JobEvent::Gains(gains)) => self.gains = Some(gains),
                Ok(JobEvent::Finished) => {
                    self.elapsed = Some(self.started.elapsed());
                }
                Ok(JobEvent::Failed(e)) => {
                    self.error = Some(e);
                    self.elapsed = Some(self.started.elapsed());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if self.elapsed.is_none() {
                        self.error = Some("the fusion thread stopped".into());
                        self.elapsed = Some(self.started.elapsed());
                    }
                    break;
                }
            }
        }
        batches
    }

    fn slice_len(&self) -> usize {
        self.slice_pixels.max(1)
    }
}

/// The job's body: builds the network on `device`, takes the volume's gains (fusing the
/// slice in view first, provisionally, whenever it is not fused yet), then fuses batch after
/// batch nearest the focus. A batch holding the slice in view while that slice shows
/// nothing yet and the reader is looking at it (not scrolling through) runs on `urgent`
/// (every core) when given.
fn run(
    inputs: &FusionInputs,
    device: Device,
    description: String,
    control: &Control,
    urgent: Option<&rayon::ThreadPool>,
    send: &mut dyn FnMut(JobEvent) -> bool,
) -> Result<(), String> {
    let model = shipped::load(inputs.task, &device).map_err(|e| e.to_string())?;
    let mut fuser = Fuser::from_model(model, device, description);
    fuser.set_detail(inputs.detail);
    let [nx, ny, nz] = inputs.dims;
    let fuse = |first: usize, count: usize, gains: Option<[f32; 3]>, now: bool| {
        let (a, b) = inputs.slab(first, count);
        let pass = || {
            fuser
                .fuse_normalised(&a, &b, [nx, ny, count], count, gains, &mut |_, _| true)
                .map_err(|e| e.to_string())
        };
        match urgent {
            Some(pool) if now => pool.install(pass),
            _ => pass(),
        }
    };
    let batch = if nx * ny > LARGE_SLICE { 1 } else { BATCH };
    let mut schedule = Schedule::with_batch(nz, batch);
    // One mix for the whole volume (Fuser::volume_gains), so that slices do not flicker;
    // taken once per pair of studies.
    let gains = match inputs.gains {
        Some(gains) => gains,
        None => {
            let mut sample = GainSample::new(nz);
            while let Some(k) = sample.next_slice() {
                control.wait_while_paused()?;
                // While the reader scrolls through, the sample goes on; where the reader
                // stops on a slice that shows nothing yet, it is fused at once (after one
                // wait of STILL, so that a jump just made is not held up by a sample pass).
                let pending = |focus: usize| schedule.state(focus) == Some(SliceState::Pending);
                if pending(control.focus().min(nz - 1)) && !control.focus_is_still() {
                    std::thread::sleep(STILL);
                }
                let focus = control.focus().min(nz - 1);
                if pending(focus) && control.focus_is_still() {
                    let maps = fuse(focus, 1, None, true)?;
                    schedule.mark(focus, 1, SliceState::Provisional);
                    let batch = JobEvent::Batch {
                        first: focus,
                        maps,
                        provisional: true,
                    };
                    if !send(batch) {
                        return Ok(());
                    }
                    continue;
                }
                let (a, b) = inputs.slab(k, 1);
                let gains = fuser
                    .image_gains(&a, &b, [nx, ny, 1])
                    .map_err(|e| e.to_string())?;
                sample.add(
                    gains.first().copied().unwrap_or_default(),
                    has_foreground(&a, &b),
                );
            }
            sample.median()
        }
    };
    if !send(JobEvent::Gains(gains)) {
        return Ok(());
    }
    loop {
        // Paused first, then the focus read: a pause holds the queue where the reader is.
        control.wait_while_paused()?;
        let focus = control.focus().min(nz.saturating_sub(1));
        let Some((first, count)) = schedule.next_batch(focus) else {
            break;
        };
        let now = (first..first + count).contains(&focus)
            && schedule.state(focus) == Some(SliceState::Pending)
            && control.focus_is_still();
        let maps = fuse(first, count, gains, now)?;
        schedule.mark(first, count, SliceState::Done);
        let batch = JobEvent::Batch {
            first,
            maps,
            provisional: false,
        };
        if !send(batch) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batches a schedule gives when the focus stays at `focus`, in order.
    fn order(slices: usize, focus: usize) -> Vec<(usize, usize)> {
        let mut schedule = Schedule::new(slices);
        let mut order = Vec::new();
        while let Some((first, count)) = schedule.next_batch(focus) {
            schedule.mark(first, count, SliceState::Done);
            order.push((first, count));
        }
        order
    }

    #[test]
    fn slices_are_fused_nearest_the_focus_first_and_each_once() {
        assert_eq!(order(5, 0), vec![(0, 2), (2, 2), (4, 1)]);
        assert_eq!(order(5, 2), vec![(2, 2), (0, 2), (4, 1)]);
        assert_eq!(order(5, 99), vec![(4, 1), (2, 2), (0, 2)]);
        assert_eq!(order(0, 0), vec![]);
        let mut one_by_one = Schedule::with_batch(5, 1);
        let mut seen = Vec::new();
        while let Some((first, count)) = one_by_one.next_batch(2) {
            assert_eq!(one_by_one.mark(first, count, SliceState::Done), 1);
            seen.push((first, count));
        }
        assert_eq!(seen, vec![(2, 1), (3, 1), (1, 1), (4, 1), (0, 1)]);
        for focus in 0..7 {
            let mut seen = vec![0; 7];
            let mut distance = 0;
            for (first, count) in order(7, focus) {
                for slice in first..first + count {
                    seen[slice] += 1;
                }
                // Each batch starts no nearer the focus than the one before it.
                let d = first
                    .abs_diff(focus)
                    .min((first + count - 1).abs_diff(focus));
                assert!(d >= distance, "{focus}: {first}+{count} after {distance}");
                distance = d;
            }
            assert!(seen.iter().all(|&n| n == 1), "{focus}: {seen:?}");
        }
    }

    #[test]
    fn moving_the_focus_moves_the_front_of_the_queue_and_provisional_slices_are_redone() {
        let mut schedule = Schedule::new(300);
        assert_eq!(schedule.mark(40, 1, SliceState::Provisional), 0);
        assert_eq!(schedule.next_batch(40), Some((40, 2)));
        assert_eq!(schedule.mark(40, 2, SliceState::Done), 2);
        assert_eq!(schedule.mark(40, 2, SliceState::Done), 0);
        assert_eq!(schedule.next_batch(40), Some((38, 2)));
        // The reader jumps 150 slices away: the next batch is there.
        assert_eq!(schedule.next_batch(190), Some((190, 2)));
        assert_eq!(schedule.next_batch(41), Some((42, 2)));
        assert_eq!(schedule.next_batch(41 + 1000), Some((299, 1)));
    }
}
