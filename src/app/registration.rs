//! Registration in the viewer: the "Register" action of the frame-of-reference banner runs a
//! rigid registration of the other study onto the reference on a background thread, then
//! puts the other study on the grid through the transform, lifts the banner and lets fusion
//! run. Transforms can be saved and loaded (`io::transform`'s text format).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use egui::Color32;

use super::ViewerApp;
use super::layers::LayerId;
use super::path_dialog::Purpose;
use super::session::Session;
use crate::volume::Volume;
use crate::volume::register::{Options, register_with_progress};
use crate::volume::resample::{Interpolation, background_of, resample_transformed};
use crate::volume::transform::Transform;

/// A registration running in the background.
pub struct RegistrationJob {
    outcome: Receiver<Result<(Transform, f64), String>>,
    pub started: Instant,
    /// Pyramid levels done, and how many there are.
    levels_done: Arc<AtomicUsize>,
    pub levels: usize,
    cancel: Arc<AtomicBool>,
}

impl RegistrationJob {
    /// Registers `moving` onto `fixed` on a background thread (rigid, or `affine`).
    pub fn start(fixed: Arc<Volume>, moving: Arc<Volume>, affine: bool) -> Result<Self, String> {
        let (sender, outcome) = sync_channel(1);
        let options = Options {
            affine,
            ..Options::default()
        };
        let levels = options.levels.len();
        let levels_done = Arc::new(AtomicUsize::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (done, stop) = (levels_done.clone(), cancel.clone());
        std::thread::Builder::new()
            .name("registration".into())
            .spawn(move || {
                let mut progress = |level, _| {
                    done.store(level, Ordering::Relaxed);
                    !stop.load(Ordering::Relaxed)
                };
                let result = register_with_progress(&fixed, &moving, &options, &mut progress)
                    .map(|r| (r.transform, r.mutual_information))
                    .map_err(|e| e.to_string());
                let _ = sender.send(result);
            })
            .map_err(|e| format!("cannot start the registration: {e}"))?;
        Ok(Self {
            outcome,
            started: Instant::now(),
            levels_done,
            levels,
            cancel,
        })
    }

    /// Pyramid levels finished so far.
    pub fn levels_done(&self) -> usize {
        self.levels_done.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The outcome once there is one.
    pub fn poll(&self) -> Option<Result<(Transform, f64), String>> {
        match self.outcome.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the registration thread stopped".into())),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Puts the other study on the grid through `transform` (fixed → moving) and records it.
pub fn apply(
    session: &mut Session,
    transform: Transform,
    metric: Option<f64>,
) -> Result<(), String> {
    let pair = &mut session.pair;
    let Some(original) = pair.original_other.clone() else {
        return Err("there is no second study to register".into());
    };
    let reference = pair
        .study(pair.reference)
        .cloned()
        .ok_or("no reference study")?;
    let moved = resample_transformed(
        &original,
        &reference.geometry,
        &transform.matrix(),
        Interpolation::Linear,
        background_of(&original),
    )
    .map_err(|e| e.to_string())?;
    let moved = Arc::new(moved);
    let other = pair.reference.other();
    match other {
        super::studies::Side::A => pair.a = moved.clone(),
        super::studies::Side::B => pair.b = Some(moved.clone()),
    }
    if let Some(layer) = session.layer_mut(LayerId::Study(other)) {
        layer.replace_volume(moved);
    }
    let shown = metric.map_or(String::new(), |m| format!(", Mattes MI {m:.3}"));
    session.pair.notes.push(format!(
        "registered: rotation {:.2?}°, translation {:.2?} mm{shown}",
        transform.angles_deg, transform.translation_mm
    ));
    session.pair.frame_warning = None;
    session.registration = Some((transform, metric));
    session.fusion_allowed = true;
    Ok(())
}

/// The viewer's side of registration: start, follow, apply, save and load.
impl ViewerApp {
    /// The banners under the toolbar: the studies' frames of reference differ (Register,
    /// Load transform…, Fuse anyway, or the registration's progress), and a registration's
    /// result (Save transform…).
    pub(super) fn registration_banners(&mut self, ui: &mut egui::Ui) {
        let warning = self
            .session
            .as_ref()
            .and_then(|s| s.pair.frame_warning.clone());
        if let Some(warning) = warning {
            egui::Panel::top("frame of reference").show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(Color32::from_rgb(255, 170, 0), "Frame of reference differs");
                    ui.label(&warning);
                    if let Some(job) = &self.registration_job {
                        let fraction = job.levels_done() as f32 / job.levels.max(1) as f32;
                        ui.add(egui::ProgressBar::new(fraction).desired_width(180.0).text(
                            format!(
                                "registering: level {}/{} · {:.0} s",
                                (job.levels_done() + 1).min(job.levels),
                                job.levels,
                                job.elapsed().as_secs_f32()
                            ),
                        ));
                        if ui.button("Cancel").clicked() {
                            job.cancel();
                        }
                        return;
                    }
                    if ui.button("Register").clicked() {
                        self.start_registration();
                    }
                    ui.checkbox(&mut self.register_affine, "affine (12 DoF)");
                    if ui.button("Load transform…").clicked() {
                        self.load_transform();
                    }
                    let fused = self.session.as_ref().is_some_and(|s| s.job.is_some());
                    if !fused && ui.button("Fuse anyway").clicked() {
                        if let Some(session) = &mut self.session {
                            session.fusion_allowed = true;
                        }
                        self.start_fusion();
                    }
                });
            });
        }
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.registration.is_some())
        {
            egui::Panel::top("registration").show(ui, |ui| {
                ui.horizontal(|ui| {
                    if let Some((t, _)) = self.session.as_ref().and_then(|s| s.registration) {
                        ui.label(format!(
                            "Registered: rotation {:.2?}°, translation {:.2?} mm",
                            t.angles_deg, t.translation_mm
                        ));
                    }
                    if ui.button("Save transform…").clicked() {
                        self.save_transform();
                    }
                });
            });
        }
    }

    /// Starts registering the other study onto the reference (the banner's "Register").
    pub fn start_registration(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        let pair = &session.pair;
        let (Some(fixed), Some(moving)) = (pair.study(pair.reference), &pair.original_other) else {
            return;
        };
        match RegistrationJob::start(fixed.clone(), moving.clone(), self.register_affine) {
            Ok(job) => self.registration_job = Some(job),
            Err(e) => self.error = Some(e),
        }
    }

    /// Applies a finished registration and starts fusion.
    pub(super) fn poll_registration(&mut self, ctx: &egui::Context) {
        let Some(job) = &self.registration_job else {
            return;
        };
        ctx.request_repaint_after(Duration::from_millis(100));
        let Some(outcome) = job.poll() else {
            return;
        };
        self.registration_job = None;
        let applied = outcome.and_then(|(transform, metric)| match &mut self.session {
            Some(session) => apply(session, transform, Some(metric)),
            None => Err("the studies were closed".into()),
        });
        match applied {
            Ok(()) => {
                if self.auto_fuse {
                    self.start_fusion();
                }
            }
            Err(e) => self.error = Some(format!("registration failed: {e}")),
        }
    }

    pub(super) fn save_transform(&mut self) {
        if self.session.as_ref().and_then(|s| s.registration).is_none() {
            return;
        }
        if let Some(paths) = self.ask_path(Purpose::SaveTransform) {
            self.use_paths(Purpose::SaveTransform, paths);
        }
    }

    /// Writes the session's registration to `path`.
    pub(super) fn write_transform(&mut self, path: &Path) {
        let Some((transform, metric)) = self.session.as_ref().and_then(|s| s.registration) else {
            return;
        };
        let notes = crate::io::transform::TransformNotes {
            metric,
            ..Default::default()
        };
        if let Err(e) = crate::io::transform::write(&transform, &notes, path, true) {
            self.error = Some(e.to_string());
        }
    }

    pub(super) fn load_transform(&mut self) {
        if let Some(paths) = self.ask_path(Purpose::LoadTransform) {
            self.use_paths(Purpose::LoadTransform, paths);
        }
    }

    /// Reads a transform from `path`, puts the other study on the grid through it and fuses.
    pub(super) fn read_transform(&mut self, path: &Path) {
        let loaded = crate::io::transform::read(path).map_err(|e| e.to_string());
        let applied = loaded.and_then(|(transform, notes)| match &mut self.session {
            Some(session) => apply(session, transform, notes.metric),
            None => Err("open two studies first".into()),
        });
        match applied {
            Ok(()) => self.start_fusion(),
            Err(e) => self.error = Some(e),
        }
    }
}
