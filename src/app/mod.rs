//! The desktop viewer (eframe/egui): open two studies, read their fusion and inspect where
//! the network trusted which study and which expert it chose.
//!
//! Modules, one job each: [`studies`] opens and pairs studies (off the UI thread),
//! [`session`] holds what is open, [`layers`] the layers and their styles,
//! [`fusion_job`] runs the network in the background, [`pane`] draws and drives one view,
//! [`render`] is the GPU side (WGSL under `shaders/`), [`panels`] the side panels, and
//! [`gpu`] shares one wgpu device between burn and eframe.

mod bars;
pub mod burn_in;
pub mod compose;
pub mod export_dialog;
mod frame_times;
pub mod fusion_job;
pub mod gpu;
pub mod input;
pub mod layers;
pub mod legend;
pub mod marks;
pub mod mip_pane;
pub mod pacs_panel;
pub mod pane;
mod panels;
pub mod path_dialog;
pub mod registration;
pub mod render;
pub mod saved_session;
pub mod session;
pub mod studies;
pub mod vois;

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use egui::{Rect, Vec2};

use crate::io::dicom::SeriesSummary;
use crate::volume::plane::Orientation;
pub use frame_times::{Benchmark, FrameTimes};
use layers::LayerId;
use pane::{Layout, PaneKind, ViewSettings};
use session::Session;
pub use studies::Source;
use studies::{LoadOutcome, Side};

/// A folder with several series waiting for the user's choice.
struct Picker {
    index: usize,
    series: Vec<SeriesSummary>,
}

/// The viewer application.
pub struct ViewerApp {
    sources: Vec<Source>,
    loading: Option<Receiver<LoadOutcome>>,
    picker: Option<Picker>,
    error: Option<String>,
    session: Option<Session>,
    pub settings: ViewSettings,
    help_open: bool,
    /// The device fusion runs on, and its name.
    compute: Option<(burn::tensor::Device, String)>,
    render_state: Option<egui_wgpu::RenderState>,
    pub frame_times: FrameTimes,
    benchmark: Option<frame_times::BenchmarkRun>,
    auto_fuse: bool,
    /// Overlays to switch on once they exist (`--overlays`).
    overlays: Vec<String>,
    /// The detail control new studies are fused at (`--detail`; `None`: the model's).
    detail: Option<f32>,
    /// Where each pane was drawn in the last frame (for tests and screenshots).
    pub pane_rects: Vec<(PaneKind, Orientation, Rect)>,
    /// Where the MIP pane was drawn in the last frame, when shown.
    pub mip_rect: Option<Rect>,
    /// Where the side panel (layers, values, VOIs) was drawn in the last frame, when shown.
    pub panel_rect: Option<Rect>,
    pub export_form: export_dialog::ExportForm,
    pub export_job: Option<export_dialog::ExportJob>,
    pub registration_job: Option<registration::RegistrationJob>,
    /// Register with scales and shears too (the banner's "affine" switch).
    pub register_affine: bool,
    /// A session being reopened: restored once its studies have loaded.
    pending_session: Option<crate::io::session_file::SavedSession>,
    /// The PACS panel (key P): search, retrieve, send.
    pub pacs: pacs_panel::PacsPanel,
    /// The in-app path field shown when the desktop's file dialog cannot open.
    pub path_prompt: Option<path_dialog::PathPrompt>,
    /// Whether to try the desktop's file dialogs at all (else the in-app path field).
    desktop_dialogs: bool,
}

/// How often the viewer draws while a fusion runs and nothing else asks for a frame (the
/// progress in the status bar); a fused batch asks for one at once.
const PROGRESS_TICK: Duration = Duration::from_millis(250);

/// The side panel's width at first, and how narrow and how wide it may be dragged.
const PANEL_WIDTH: f32 = 330.0;
const PANEL_MIN_WIDTH: f32 = 240.0;
const PANEL_MAX_WIDTH: f32 = 640.0;

impl ViewerApp {
    /// The viewer, loading `sources` in the background; drawing on `cc`'s wgpu device.
    pub fn new(cc: &eframe::CreationContext<'_>, sources: Vec<Source>) -> Self {
        let render_state = cc.wgpu_render_state.clone();
        if let Some(state) = &render_state {
            render::install(state);
        }
        let mut app = Self {
            sources: Vec::new(),
            loading: None,
            picker: None,
            error: None,
            session: None,
            settings: ViewSettings::default(),
            help_open: false,
            compute: None,
            render_state,
            frame_times: FrameTimes::default(),
            benchmark: None,
            auto_fuse: true,
            overlays: Vec::new(),
            detail: None,
            pane_rects: Vec::new(),
            panel_rect: None,
            path_prompt: None,
            desktop_dialogs: true,
            mip_rect: None,
            export_form: Default::default(),
            export_job: None,
            registration_job: None,
            register_affine: false,
            pending_session: None,
            pacs: pacs_panel::PacsPanel::from_user_settings(),
        };
        app.open(sources);
        app
    }

    /// Sets the device fusion runs on and how the status bar names it.
    pub fn with_compute(mut self, device: burn::tensor::Device, description: String) -> Self {
        self.compute = Some((device, description));
        self
    }

    /// The PACS panel on these settings and this cache instead of the user's.
    pub fn with_pacs(mut self, settings: crate::pacs::Settings, cache: crate::pacs::Cache) -> Self {
        self.pacs = pacs_panel::PacsPanel::new(settings, cache);
        self
    }

    /// Whether fusion starts by itself once two studies are open (default: yes).
    /// Whether file choices go to the desktop's dialog when one can open (the default), or
    /// always to the in-app path field.
    pub fn with_desktop_dialogs(mut self, enabled: bool) -> Self {
        self.desktop_dialogs = enabled;
        self
    }

    pub fn with_auto_fuse(mut self, auto_fuse: bool) -> Self {
        self.auto_fuse = auto_fuse;
        self
    }

    /// Overlays to show once they exist: `fused`, `study` (the other study over the
    /// reference), `reliability-a[-S]`, `reliability-b[-S]`, `alpha[-S]` (S: scale, 0 when
    /// left out). Any other name is reported in the status bar.
    pub fn with_overlays(mut self, names: Vec<String>) -> Self {
        self.overlays = names;
        self
    }

    /// Fuses new studies at the detail control `d` (`None`: the model's default).
    pub fn with_detail(mut self, d: Option<f32>) -> Self {
        self.detail = d;
        self
    }

    /// Switches on the overlays asked for with [`Self::with_overlays`].
    fn apply_overlays(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        for name in &self.overlays {
            let (stem, scale) = match name.rsplit_once('-') {
                Some((stem, s)) if s.parse::<usize>().is_ok() => {
                    (stem, s.parse::<usize>().unwrap_or(0))
                }
                _ => (name.as_str(), 0),
            };
            let id = match stem {
                "fused" => LayerId::Fused,
                "study" => LayerId::Study(session.pair.reference.other()),
                "reliability-a" => LayerId::Reliability(Side::A, scale),
                "reliability-b" => LayerId::Reliability(Side::B, scale),
                "alpha" => LayerId::Alpha(scale),
                _ => {
                    self.error = Some(format!("unknown overlay \"{name}\""));
                    continue;
                }
            };
            if let Some(layer) = session.layer_mut(id) {
                layer.style.visible = true;
                // The last overlay named gets the right-drag (window/level), as its "W/L"
                // button would give it.
                self.settings.selected = id;
            }
        }
    }

    /// Scrolls through the study one slice per frame and closes (frame-time measurement).
    pub fn with_benchmark(mut self, benchmark: Benchmark) -> Self {
        self.benchmark = Some(frame_times::BenchmarkRun::new(benchmark));
        self
    }

    /// Opens `sources` (replacing what is open).
    pub fn open(&mut self, sources: Vec<Source>) {
        self.sources = sources.clone();
        self.error = None;
        self.picker = None;
        if sources.is_empty() {
            return;
        }
        match studies::load_in_background(sources) {
            Ok(receiver) => self.loading = Some(receiver),
            Err(e) => self.error = Some(e),
        }
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The series summaries the picker offers, while it is open.
    pub fn picker_series(&self) -> Option<&[SeriesSummary]> {
        self.picker.as_ref().map(|p| p.series.as_slice())
    }

    /// Starts (or restarts) fusion of the open pair.
    pub fn start_fusion(&mut self) {
        let (Some(session), Some((device, description))) = (&mut self.session, &self.compute)
        else {
            return;
        };
        if let Err(e) = session.start_fusion(device.clone(), description.clone()) {
            self.error = Some(e);
        }
        self.apply_overlays();
    }

    /// Fuses again at the detail control `d` (the slice in view first).
    pub fn set_detail(&mut self, d: f32) {
        let (Some(session), Some((device, description))) = (&mut self.session, &self.compute)
        else {
            return;
        };
        if let Err(e) = session.set_detail(d, device.clone(), description.clone()) {
            self.error = Some(e);
        }
    }

    fn poll_loading(&mut self) {
        let Some(receiver) = &self.loading else {
            return;
        };
        let outcome = match receiver.try_recv() {
            Ok(outcome) => outcome,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                LoadOutcome::Failed("the loading thread stopped".into())
            }
        };
        self.loading = None;
        match outcome {
            LoadOutcome::Loaded(volumes) => match studies::pair(volumes) {
                Ok(pair) => {
                    if let Some(run) = &mut self.benchmark {
                        run.studies_opened();
                    }
                    let mut session = Session::new(pair);
                    session.detail = self.detail;
                    self.session = Some(session);
                    // New studies start from the default view, in the layout chosen.
                    self.settings = ViewSettings {
                        layout: self.settings.layout,
                        show_legend: self.settings.show_legend,
                        ..ViewSettings::default()
                    };
                    self.apply_overlays();
                    if self.auto_fuse && self.session.as_ref().is_some_and(|s| s.fusion_allowed) {
                        self.start_fusion();
                    }
                    self.restore_pending_session();
                }
                Err(e) => self.error = Some(e),
            },
            LoadOutcome::NeedsChoice { index, series } => {
                self.picker = Some(Picker { index, series });
            }
            LoadOutcome::Failed(e) => self.error = Some(e),
        }
    }

    /// Uploads new or changed layers to the GPU.
    fn sync_gpu(&mut self) {
        let (Some(state), Some(session)) = (&self.render_state, &mut self.session) else {
            return;
        };
        // Studies are always drawn; the network's maps only hold GPU memory while shown.
        let drawn = |l: &layers::Layer| matches!(l.id, LayerId::Study(_)) || l.style.visible;
        let failed = render::with_renderer(state, |renderer, device, queue| {
            let mut failed = None;
            for layer in session.layers.iter_mut().filter(|l| drawn(l)) {
                if let Err(e) = renderer.sync_layer(device, queue, layer) {
                    failed = Some(e);
                }
            }
            let keep: Vec<u64> = session
                .layers
                .iter()
                .filter(|l| drawn(l))
                .map(|l| l.id.key())
                .collect();
            renderer.retain(&keep);
            failed
        });
        if let Some(Some(error)) = failed {
            self.error = Some(error);
        }
    }

    /// Collects what the background jobs (loading, fusion) finished since the last frame,
    /// records the frame's time, and keeps frames coming while a job runs.
    fn poll_jobs(&mut self, ctx: &egui::Context) {
        let dt = ctx.input(|i| i.unstable_dt);
        self.poll_loading();
        let fusing = self
            .session
            .as_ref()
            .and_then(|s| s.job.as_ref())
            .is_some_and(|j| j.is_running());
        if let Some(session) = &mut self.session
            && session.poll_fusion()
            && !session.job.as_ref().is_some_and(|j| j.is_running())
        {
            // Fusion has filled the network's layers: their VOI statistics exist now.
            vois::refresh(session);
        }
        if let Some(job) = self.session.as_ref().and_then(|s| s.job.as_ref()) {
            job.set_waker(ctx);
        }
        if self.session.is_some() {
            self.frame_times.record(fusing, dt);
        }
        let scripted = self.benchmark.as_ref().is_some_and(|b| b.scrolls());
        if self.loading.is_some() || scripted {
            ctx.request_repaint_after(Duration::from_millis(16));
        } else if fusing || self.benchmark.is_some() {
            // The job wakes the viewer when a batch is fused; meanwhile a few frames a second
            // keep the progress current. Drawing continuously would take a core from the
            // fusion where the drawing is done on the CPU (lavapipe).
            ctx.request_repaint_after(PROGRESS_TICK);
        }
    }

    /// The windows over the panes: the series picker, help, the PACS panel and the export
    /// dialog (with the export job's progress), and the registration job's outcome.
    fn windows(&mut self, ctx: &egui::Context) {
        if let Some(picker) = &self.picker
            && let Some(choice) = panels::series_picker(ctx, &picker.series)
        {
            let index = picker.index;
            self.picker = None;
            if choice > 0 {
                let mut sources = self.sources.clone();
                if let Some(source) = sources.get_mut(index) {
                    *source = Source::Series(source.path().clone(), choice);
                }
                self.open(sources);
            }
        }
        panels::help(ctx, &mut self.help_open);
        self.path_prompt_window(ctx);
        if let Some(folder) = pacs_panel::show(ctx, &mut self.pacs) {
            self.open_dropped(vec![folder]);
        }
        self.poll_registration(ctx);
        if let Some(job) = &mut self.export_job {
            job.poll();
            if job.is_running() {
                ctx.request_repaint_after(Duration::from_millis(50));
            }
        }
        export_dialog::show(
            ctx,
            &mut self.export_form,
            &mut self.export_job,
            self.session.as_ref(),
            &self.settings,
            &mut self.pacs,
        );
    }

    fn panes(&mut self, ui: &mut egui::Ui) {
        let Some(session) = &mut self.session else {
            ui.centered_and_justified(|ui| {
                ui.label(if self.loading.is_some() {
                    "loading studies…"
                } else {
                    "Open one or two studies (Open…, or drop folders here)"
                });
            });
            return;
        };
        let active = self.settings.orientation;
        let panes: Vec<(PaneKind, Orientation)> = match self.settings.layout {
            Layout::SideBySide if session.pair.b.is_some() => [
                PaneKind::Study(Side::A),
                PaneKind::Study(Side::B),
                PaneKind::Fusion,
            ]
            .map(|kind| (kind, active))
            .to_vec(),
            Layout::SideBySide => vec![(PaneKind::Study(Side::A), active)],
            Layout::Single(kind) => vec![(kind, active)],
            Layout::Planes => {
                let kind = if session.pair.b.is_some() {
                    PaneKind::Fusion
                } else {
                    PaneKind::Study(Side::A)
                };
                Orientation::ALL.map(|o| (kind, o)).to_vec()
            }
            Layout::WithMip if session.pair.b.is_some() => vec![(PaneKind::Fusion, active)],
            Layout::WithMip => vec![(PaneKind::Study(Side::A), active)],
        };
        let with_mip = self.settings.layout == Layout::WithMip;
        let gpu = self
            .render_state
            .as_ref()
            .and_then(|state| render::with_renderer(state, |r, _, _| r.srgb_target()));
        let area = ui.available_rect_before_wrap();
        let width = area.width() / (panes.len() + usize::from(with_mip)) as f32;
        session.hover = None;
        self.pane_rects.clear();
        self.mip_rect = None;
        for (index, (kind, orientation)) in panes.into_iter().enumerate() {
            let rect = Rect::from_min_size(
                area.min + Vec2::new(index as f32 * width, 0.0),
                Vec2::new(width - 4.0, area.height()),
            );
            // Each pane sees the settings in its own plane; what it changes (zoom, pan,
            // compare, selection) is kept, the active plane is not.
            let mut settings = ViewSettings {
                orientation,
                ..self.settings.clone()
            };
            let scroll = pane::show(ui, rect, kind, session, &mut settings, gpu).scroll;
            self.settings = ViewSettings {
                orientation: active,
                ..settings
            };
            if scroll != 0 {
                session.scroll(orientation, scroll);
            }
            self.pane_rects.push((kind, orientation, rect));
        }
        if with_mip {
            let rect = Rect::from_min_size(
                area.min + Vec2::new(self.pane_rects.len() as f32 * width, 0.0),
                Vec2::new(width - 4.0, area.height()),
            );
            self.settings.mip_angle = mip_pane::show(ui, rect, session, self.settings.mip_angle);
            self.mip_rect = Some(rect);
        }
        ui.allocate_rect(area, egui::Sense::hover());
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.poll_jobs(&ctx);
        self.dropped(&ctx);
        self.keyboard(&ctx);
        self.run_benchmark(&ctx);
        self.sync_gpu();
        self.windows(&ctx);

        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        self.registration_banners(ui);
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        self.panel_rect = None;
        let mut detail_chosen = None;
        if let Some(session) = &mut self.session {
            // Resizable, and nothing in it may widen it: its contents wrap, and the VOI tables
            // scroll sideways within it when the panel is dragged narrower than they are.
            let panel = egui::Panel::right("layers")
                .resizable(true)
                .default_size(PANEL_WIDTH)
                .size_range(PANEL_MIN_WIDTH..=PANEL_MAX_WIDTH)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .auto_shrink([false, false])
                        .show(ui, |ui| {
                            if let Some(d) = panels::layer_panel(ui, session, &mut self.settings) {
                                detail_chosen = Some(d);
                            }
                            ui.separator();
                            panels::readout(ui, session);
                            ui.separator();
                            vois::panel(ui, session, &mut self.settings.tool_options);
                            for note in &session.pair.notes {
                                ui.small(note);
                            }
                        });
                });
            self.panel_rect = Some(panel.response.rect);
        }
        if let Some(d) = detail_chosen {
            self.set_detail(d);
        }
        egui::CentralPanel::default().show(ui, |ui| self.panes(ui));
    }
}
