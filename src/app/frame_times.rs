//! Frame times, for the status bar and the scripted scroll benchmark
//! (`dualmine view --benchmark-frames N`).

use super::ViewerApp;

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
/// frame for `frames` frames, then the app closes.
#[derive(Clone, Copy, Debug)]
pub struct Benchmark {
    pub frames: usize,
    /// Wait for fusion to finish before scrolling.
    pub after_fusion: bool,
}

impl ViewerApp {
    pub(super) fn run_benchmark(&mut self, ctx: &egui::Context) {
        let Some((benchmark, done, direction)) = &mut self.benchmark else {
            return;
        };
        let Some(session) = &mut self.session else {
            return;
        };
        let fusing = session.job.as_ref().is_some_and(|j| j.is_running());
        if benchmark.after_fusion && fusing {
            return;
        }
        let orientation = self.settings.orientation;
        let last = orientation.slice_count(session.dims()).saturating_sub(1);
        let slice = session.slice(orientation);
        if (slice == last && *direction > 0) || (slice == 0 && *direction < 0) {
            *direction = -*direction;
        }
        session.scroll(orientation, *direction);
        *done += 1;
        if *done > benchmark.frames {
            report("while fusing", &self.frame_times.during_fusion);
            report("idle", &self.frame_times.idle);
            self.benchmark = None;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
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
