//! Frame times, for the status bar and the scripted scroll benchmark
//! (`dualmine view --benchmark-frames N`).

use std::time::Instant;

use super::ViewerApp;
use super::fusion_job::SliceState;
use crate::volume::plane::Orientation;

/// Frame times of the last frames, for the status bar and the scroll benchmark.
#[derive(Default)]
pub struct FrameTimes {
    pub during_fusion: Vec<f32>,
    pub idle: Vec<f32>,
    last: Option<f32>,
}

/// Frames kept per list (older ones are dropped, so a long session holds a bounded amount).
const KEPT: usize = 100_000;

impl FrameTimes {
    /// Records one frame's duration (seconds).
    pub fn record(&mut self, fusing: bool, seconds: f32) {
        let list = if fusing {
            &mut self.during_fusion
        } else {
            &mut self.idle
        };
        if list.len() >= KEPT {
            list.drain(..KEPT / 2);
        }
        list.push(seconds);
        self.last = Some(seconds);
    }

    /// The last frame's duration.
    pub fn last(&self) -> Option<f32> {
        self.last
    }
}

/// A scripted scroll through the study (the `--benchmark-frames` option): one slice per
/// frame for `frames` frames, then the app closes. With `reading` (`--benchmark-reading`),
/// first what a reader waits for: the slice in view fused, then a slice 150 away once the
/// reader jumps there; then `frames` frames of scrolling while the fusion runs and as many
/// once it has finished.
#[derive(Clone, Copy, Debug)]
pub struct Benchmark {
    pub frames: usize,
    /// Wait for fusion to finish before scrolling.
    pub after_fusion: bool,
    /// Time the slice in view and a jump before scrolling (see above).
    pub reading: bool,
}

/// Slices the reading benchmark jumps.
const JUMP: i64 = 150;

/// Where a scripted benchmark is.
pub(super) struct BenchmarkRun {
    benchmark: Benchmark,
    phase: Phase,
    /// Frames scrolled in this phase.
    scrolled: usize,
    direction: i64,
    /// When the studies were loaded (the reading benchmark's clock starts there, before the
    /// fusion's outputs are made).
    opened: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Until the studies are open and fusing.
    Loading,
    /// Until the slice in view is fused (shown), timed from the studies' loading (the fusion's
    /// start included).
    SliceInView { since: Instant, slice: usize },
    /// Until the slice jumped to is fused.
    Jumped { since: Instant, slice: usize },
    /// Scrolling while the fusion runs.
    ScrollWhileFusing,
    /// Waiting for the fusion to finish.
    WaitForFusion,
    /// Scrolling once it has.
    ScrollIdle,
}

impl BenchmarkRun {
    /// Whether the script is scrolling (and needs a frame as soon as possible), rather than
    /// waiting for the fusion as a reader would, with the viewer's usual frames.
    pub(super) fn scrolls(&self) -> bool {
        matches!(self.phase, Phase::ScrollWhileFusing | Phase::ScrollIdle)
    }

    pub(super) fn new(benchmark: Benchmark) -> Self {
        Self {
            benchmark,
            phase: if benchmark.reading {
                Phase::Loading
            } else if benchmark.after_fusion {
                Phase::WaitForFusion
            } else {
                Phase::ScrollWhileFusing
            },
            scrolled: 0,
            direction: 1,
            opened: None,
        }
    }

    /// The studies are loaded: the time to the slice in view counts from now.
    pub(super) fn studies_opened(&mut self) {
        self.opened = Some(Instant::now());
    }
}

impl ViewerApp {
    pub(super) fn run_benchmark(&mut self, ctx: &egui::Context) {
        let orientation = self.settings.orientation;
        let (Some(run), Some(session)) = (&mut self.benchmark, &mut self.session) else {
            return;
        };
        let fusing = session.job.as_ref().is_some_and(|j| j.is_running());
        let fused = |session: &super::session::Session, slice: usize| {
            session
                .job
                .as_ref()
                .is_some_and(|j| !matches!(j.slice_state(slice), Some(SliceState::Pending) | None))
        };
        let axial = Orientation::Axial;
        match run.phase {
            Phase::Loading => {
                if session.job.is_some() {
                    let slice = session.slice(axial);
                    run.phase = Phase::SliceInView {
                        since: run.opened.unwrap_or_else(Instant::now),
                        slice,
                    };
                }
            }
            Phase::SliceInView { since, slice } => {
                if fused(session, slice) {
                    println!(
                        "slice in view ({slice}) fused and shown {:.2} s after the studies opened",
                        since.elapsed().as_secs_f32()
                    );
                    let last = session.dims()[2].saturating_sub(1) as i64;
                    let step = if slice as i64 + JUMP <= last {
                        JUMP
                    } else {
                        -JUMP
                    };
                    session.scroll(axial, step);
                    run.phase = Phase::Jumped {
                        since: Instant::now(),
                        slice: session.slice(axial),
                    };
                }
            }
            Phase::Jumped { since, slice } => {
                if fused(session, slice) {
                    println!(
                        "jumped to slice {slice}: fused and shown {:.2} s later",
                        since.elapsed().as_secs_f32()
                    );
                    self.frame_times = FrameTimes::default();
                    run.phase = Phase::ScrollWhileFusing;
                }
            }
            Phase::ScrollWhileFusing | Phase::ScrollIdle => {
                let last = orientation.slice_count(session.dims()).saturating_sub(1);
                let slice = session.slice(orientation);
                if (slice == last && run.direction > 0) || (slice == 0 && run.direction < 0) {
                    run.direction = -run.direction;
                }
                session.scroll(orientation, run.direction);
                run.scrolled += 1;
                if run.scrolled > run.benchmark.frames {
                    run.scrolled = 0;
                    if matches!(run.phase, Phase::ScrollWhileFusing) && run.benchmark.reading {
                        report("while fusing", &self.frame_times.during_fusion);
                        run.phase = Phase::WaitForFusion;
                    } else {
                        // The reading benchmark reported its scroll while fusing already.
                        if !run.benchmark.reading {
                            report("while fusing", &self.frame_times.during_fusion);
                        }
                        report("idle", &self.frame_times.idle);
                        self.benchmark = None;
                        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                }
            }
            Phase::WaitForFusion => {
                if !fusing {
                    run.phase = Phase::ScrollIdle;
                }
            }
        }
    }
}
/// Prints the median and worst of frame times (seconds).
fn report(what: &str, times: &[f32]) {
    // The first frames include shader compilation and uploads; skip them.
    let mut sorted: Vec<f32> = times.iter().skip(5).copied().collect();
    if sorted.is_empty() {
        return;
    }
    sorted.sort_by(f32::total_cmp);
    println!(
        "frame time {what}: median {:.1} ms, worst {:.1} ms over {} frames",
        sorted[sorted.len() / 2] * 1000.0,
        sorted[sorted.len() - 1] * 1000.0,
        sorted.len()
    );
}
