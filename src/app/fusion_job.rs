//! Fusion as a background job: the network runs on its own thread, a few slices at a time,
//! and sends each batch of outputs back as soon as it is computed, so the viewer shows
//! results slice by slice while it keeps responding. The job can be paused and cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use burn::tensor::Device;

use crate::fusion::fuser::{Fuser, FusionMaps};
use crate::fusion::shipped;
use crate::volume::Volume;
use crate::volume::intensity::Window;

/// Slices per network call.
const BATCH: usize = 2;

/// What the network is given: inputs mapped to 0..1, on one grid.
pub struct FusionInputs {
    /// The network's A (CT or emission study) and B (MR), 0..1, x fastest.
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub dims: [usize; 3],
    /// Which built-in model (one of `shipped::TASKS`).
    pub task: &'static str,
    /// True when the viewer's study A is the network's B (the outputs' A/B swap back).
    pub swapped: bool,
    /// The detail control d (0 faithful … 1 most local detail).
    pub detail: f32,
    /// The slice fused first (the one in view); the others follow in order from it, then
    /// those before it.
    pub first_slice: usize,
    /// The decoder's gains for the whole volume when an earlier job on the same studies
    /// took them (they do not depend on d): a new detail then starts with the slice in view.
    pub gains: Option<Option<[f32; 3]>>,
}

impl FusionInputs {
    /// Orders two studies on one grid the way the network was trained
    /// (`shipped::swapped_for_network`: A the CT/PET/SPECT and B the MR, or A the PET and B
    /// the CT) and maps each through its default window (what the viewer shows by default).
    pub fn new(a: &Volume, b: &Volume) -> Self {
        let swapped = shipped::swapped_for_network([a, b]);
        let (na, nb) = if swapped { (b, a) } else { (a, b) };
        // The viewer fuses gray studies only, so a task always exists.
        let task = shipped::task_for([na, nb]).unwrap_or("ct-mri");
        Self {
            a: Window::default_for(na).normalised(na),
            b: Window::default_for(nb).normalised(nb),
            dims: a.geometry.dims,
            task,
            swapped,
            detail: shipped::default_detail(task),
            first_slice: 0,
            gains: None,
        }
    }
}

/// A message from the job.
pub enum JobEvent {
    /// The decoder's gains taken for the whole volume (`None`: none could be taken).
    Gains(Option<[f32; 3]>),
    /// Outputs for slices `first..first + n`.
    Batch {
        first: usize,
        maps: FusionMaps,
    },
    Finished,
    Failed(String),
}

/// A running (or finished) fusion.
pub struct FusionJob {
    events: Receiver<JobEvent>,
    cancel: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    pub total: usize,
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
}

impl FusionJob {
    /// Starts fusing `inputs` with the built-in model for their task on `device`.
    pub fn start(inputs: FusionInputs, device: Device, description: String) -> Self {
        let (sender, events) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(false));
        let total = inputs.dims[2];
        let slice_pixels = inputs.dims[0] * inputs.dims[1];
        let (swapped, task, detail) = (inputs.swapped, inputs.task, inputs.detail);
        let flags = (cancel.clone(), pause.clone());
        let worker = move || {
            let fuse = || {
                run(&inputs, device, description, &flags.0, &flags.1, &mut |e| {
                    sender.send(e).is_ok()
                })
            };
            // On the CPU backend the network would take every core and starve the drawing
            // (lavapipe draws on the CPU too): leave one core to the viewer.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let outcome = match rayon::ThreadPoolBuilder::new()
                .num_threads(cores.saturating_sub(1).max(1))
                .thread_name(|i| format!("fusion-{i}"))
                .build()
            {
                Ok(pool) => pool.install(fuse),
                Err(_) => fuse(),
            };
            let _ = sender.send(match outcome {
                Ok(()) => JobEvent::Finished,
                Err(e) => JobEvent::Failed(e),
            });
        };
        let mut job = Self {
            events,
            cancel,
            pause,
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

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.pause.load(Ordering::Relaxed)
    }

    /// Batches computed since the last call (the job's bookkeeping is updated).
    pub fn poll(&mut self) -> Vec<(usize, FusionMaps)> {
        let mut batches = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(JobEvent::Batch { first, maps }) => {
                    self.done += maps.fused.len() / self.slice_len();
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

/// The job's body: builds the network on `device`, then fuses batch after batch.
fn run(
    inputs: &FusionInputs,
    device: Device,
    description: String,
    cancel: &AtomicBool,
    pause: &AtomicBool,
    send: &mut dyn FnMut(JobEvent) -> bool,
) -> Result<(), String> {
    let model = shipped::load(inputs.task, &device).map_err(|e| e.to_string())?;
    let mut fuser = Fuser::from_model(model, device, description);
    fuser.set_detail(inputs.detail);
    let [nx, ny, nz] = inputs.dims;
    let slice = nx * ny;
    // One mix for the whole volume (Fuser::volume_gains), so that slices do not flicker;
    // taken once per pair of studies.
    let gains = match inputs.gains {
        Some(gains) => gains,
        None => fuser
            .volume_gains(&inputs.a, &inputs.b, inputs.dims)
            .map_err(|e| e.to_string())?,
    };
    if !send(JobEvent::Gains(gains)) {
        return Ok(());
    }
    for (first, count) in batch_order(nz, inputs.first_slice) {
        while pause.load(Ordering::Relaxed) && !cancel.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cancel.load(Ordering::Relaxed) {
            return Err("fusion was cancelled".into());
        }
        let range = first * slice..(first + count) * slice;
        let maps = fuser
            .fuse_normalised(
                &inputs.a[range.clone()],
                &inputs.b[range],
                [nx, ny, count],
                count,
                gains,
                &mut |_, _| true,
            )
            .map_err(|e| e.to_string())?;
        if !send(JobEvent::Batch { first, maps }) {
            return Ok(());
        }
    }
    Ok(())
}

/// The batches of `slices` slices as (first slice, count): from `start` (clamped) to the
/// end, then from 0 to `start`, each slice once.
fn batch_order(slices: usize, start: usize) -> Vec<(usize, usize)> {
    let start = start.min(slices.saturating_sub(1));
    let mut order = Vec::new();
    for (from, to) in [(start, slices), (0, start)] {
        let mut first = from;
        while first < to {
            let count = BATCH.min(to - first);
            order.push((first, count));
            first += count;
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slice_in_view_is_fused_first_and_every_slice_once() {
        assert_eq!(batch_order(5, 0), vec![(0, 2), (2, 2), (4, 1)]);
        assert_eq!(batch_order(5, 3), vec![(3, 2), (0, 2), (2, 1)]);
        assert_eq!(batch_order(5, 99), vec![(4, 1), (0, 2), (2, 2)]);
        assert_eq!(batch_order(0, 0), vec![]);
        for start in 0..7 {
            let mut seen = vec![0; 7];
            for (first, count) in batch_order(7, start) {
                for slice in first..first + count {
                    seen[slice] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{start}: {seen:?}");
        }
    }
}
