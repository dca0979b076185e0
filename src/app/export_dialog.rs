//! The export dialog: the fusion pane as displayed (PNG, overlays burned in or not), the
//! fused image raw (16-bit PNG), or the fused study and its maps as derived DICOM series.
//! Runs on a background thread with progress and cancel; existing files are never replaced
//! unless the user confirms.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use egui::epaint::ClippedPrimitive;

use super::burn_in::{HeadlessPainter, Textures, rasterize};
use super::compose::compose;
use super::layers::LayerId;
use super::legend;
use super::pacs_panel::PacsPanel;
use super::pane::{PaneKind, ViewSettings, annotate, draws_at};
use super::path_dialog::{self, Picked};
use super::render::PaneDraw;
use super::session::Session;
use super::studies::Side;
use crate::export::displayed_series::DisplayedSeries;
use crate::export::fusion_series::{FusionExport, Meaning, OutputSeries, describe, write_fusion};
use crate::export::png::{PngPixels, picture_size, sample16, write_all};
use crate::export::{ExportError, png::PngError};
use crate::volume::Volume;
use crate::volume::plane::{Orientation, PlaneMapping};

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// The fusion pane as displayed, 8-bit RGB PNG.
    DisplayedPng,
    /// The fused values, 16-bit gray PNG (0..1 → 0..65535).
    RawPng,
    /// Derived DICOM series: fused image and every map.
    Dicom,
}

/// The DICOM series to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesChoice {
    /// The fused image (values 0–1 on the reference grid).
    pub fused: bool,
    /// Every reliability and mixer map, a series each.
    pub maps: bool,
    /// The fusion pane as displayed, every slice of its plane, as RGB secondary captures.
    pub displayed: bool,
}

impl SeriesChoice {
    /// Whether any series is chosen.
    pub fn any(self) -> bool {
        self.fused || self.maps || self.displayed
    }
}

impl Default for SeriesChoice {
    fn default() -> Self {
        Self {
            fused: true,
            maps: true,
            displayed: true,
        }
    }
}

/// The dialog's choices.
pub struct ExportForm {
    pub open: bool,
    pub kind: ExportKind,
    pub all_slices: bool,
    pub overlays: bool,
    /// DICOM: which series to write.
    pub series: SeriesChoice,
    /// Burn in what is painted over the pane: VOI contours, title, orientation letters and
    /// colour scales (those shown on screen).
    pub annotations: bool,
    pub anonymize: bool,
    pub folder: String,
    /// Set after an export found existing files: the next run replaces them.
    pub confirm_overwrite: bool,
    /// Why "Choose…" could not open a folder dialog, when it could not.
    pub folder_note: Option<String>,
}

impl Default for ExportForm {
    fn default() -> Self {
        Self {
            open: false,
            kind: ExportKind::DisplayedPng,
            all_slices: false,
            overlays: true,
            annotations: true,
            series: SeriesChoice::default(),
            anonymize: false,
            folder: std::env::temp_dir()
                .join("dualmine-export")
                .display()
                .to_string(),
            confirm_overwrite: false,
            folder_note: None,
        }
    }
}

/// A running export.
pub struct ExportJob {
    events: Receiver<Progress>,
    cancel: Arc<AtomicBool>,
    pub done: usize,
    pub total: usize,
    /// Set when it ended: files written, or why not.
    pub outcome: Option<Result<usize, String>>,
    /// It ended because files exist (the dialog asks to overwrite).
    pub exists: bool,
    /// What it wrote (for "Send to PACS").
    pub files: Vec<PathBuf>,
}

enum Progress {
    Step(usize, usize),
    Finished(Result<Vec<PathBuf>, String>, bool),
}

impl ExportJob {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_running(&self) -> bool {
        self.outcome.is_none()
    }

    /// Takes the job's news.
    pub fn poll(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(Progress::Step(done, total)) => (self.done, self.total) = (done, total),
                Ok(Progress::Finished(outcome, exists)) => {
                    self.outcome = Some(outcome.as_ref().map(Vec::len).map_err(Clone::clone));
                    self.files = outcome.unwrap_or_default();
                    self.exists = exists;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if self.outcome.is_none() {
                        self.outcome = Some(Err("the export thread stopped".into()));
                    }
                    break;
                }
            }
        }
    }
}

/// Everything the export thread needs, copied out of the session (volumes are shared).
struct Work {
    kind: ExportKind,
    folder: PathBuf,
    overwrite: bool,
    anonymize: bool,
    /// PNG: per slice, its file name, the fusion pane's draws, pixel size and plane.
    slices: Vec<PngSlice>,
    /// The textures the slices' annotations sample.
    textures: Textures,
    /// DICOM pictures: the patient directions of their rows and columns.
    patient_orientation: String,
    volumes: HashMap<u64, Arc<Volume>>,
    /// The model and any registration, in words (DerivationDescription).
    model: String,
    /// DICOM: reference, sources and outputs (layer id, folder).
    reference: Arc<Volume>,
    sources: [Arc<Volume>; 2],
    maps: Vec<(LayerId, String)>,
}

/// One PNG to write.
struct PngSlice {
    name: String,
    draws: Vec<PaneDraw>,
    size: [usize; 2],
    plane: PlaneMapping,
    /// What is painted over the image (VOIs, letters, scales), as triangles.
    annotations: Vec<ClippedPrimitive>,
}

/// Starts the export the form describes, or says why it cannot.
pub fn start(
    form: &ExportForm,
    session: &Session,
    settings: &ViewSettings,
) -> Result<ExportJob, String> {
    let b = session
        .pair
        .b
        .clone()
        .ok_or("export needs two fused studies")?;
    let fused_done = session
        .layer(LayerId::Fused)
        .is_some_and(|l| l.volume.data.iter().all(|v| !v.is_nan()));
    if form.kind != ExportKind::DisplayedPng && !fused_done {
        return Err("fusion has not finished: nothing to export yet".into());
    }
    if form.folder.trim().is_empty() {
        return Err("choose a folder".into());
    }
    let orientation = settings.orientation;
    let dims = session.dims();
    if form.kind == ExportKind::Dicom && !form.series.any() {
        return Err("choose at least one series to write".into());
    }
    let every_slice = (0..orientation.slice_count(dims)).collect();
    let slices: Vec<usize> = match form.kind {
        ExportKind::Dicom if form.series.displayed => every_slice,
        ExportKind::Dicom => Vec::new(),
        _ if form.all_slices => every_slice,
        _ => vec![session.slice(orientation)],
    };
    let volumes: HashMap<u64, Arc<Volume>> = session
        .layers
        .iter()
        .map(|l| (l.id.key(), l.volume.clone()))
        .collect();
    let (png_slices, textures) = png_slices(form, session, settings, &slices);
    let maps = map_folders(session, form.series);
    let reference = session
        .pair
        .study(session.pair.reference)
        .cloned()
        .ok_or("no reference study")?;
    let mut model = match &session.job {
        Some(job) => format!("built-in {} weights, detail d = {}", job.task, job.detail),
        None => "built-in weights".to_string(),
    };
    if let Some((t, metric)) = &session.registration {
        model += &format!("; the second {}", t.note(*metric));
    }
    let work = Work {
        model,
        kind: form.kind,
        folder: PathBuf::from(form.folder.trim()),
        overwrite: form.confirm_overwrite,
        anonymize: form.anonymize,
        slices: png_slices,
        textures,
        patient_orientation: patient_orientation(orientation),
        volumes,
        reference,
        sources: [session.pair.a.clone(), b],
        maps,
    };
    spawn(work)
}

/// The PNGs of `slices` of the shown plane: what the fusion pane draws there (only the base
/// without overlays; nothing for raw values) in square millimetre pixels, with what is
/// painted over it when asked, and names that say plane, slice and position. Raw values keep
/// one pixel a voxel.
fn png_slices(
    form: &ExportForm,
    session: &Session,
    settings: &ViewSettings,
    slices: &[usize],
) -> (Vec<PngSlice>, Textures) {
    let orientation = settings.orientation;
    let dims = session.dims();
    let geometry = &session.pair.a.geometry;
    let voxels = orientation.size_voxels(dims);
    let size = match form.kind {
        ExportKind::RawPng => voxels,
        _ => picture_size(voxels, orientation.size_mm(geometry)),
    };
    let canvas =
        egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(size[0] as f32, size[1] as f32));
    let burn = form.kind != ExportKind::RawPng && form.annotations;
    let mut painter = HeadlessPainter::new();
    let pngs = slices
        .iter()
        .map(|&k| {
            let mut draws = match form.kind {
                ExportKind::RawPng => Vec::new(),
                _ => draws_at(
                    session,
                    PaneKind::Fusion,
                    settings,
                    k,
                    [0.0, 0.0, 1.0, 1.0],
                    false,
                ),
            };
            if !form.overlays {
                draws.truncate(1);
            }
            let annotations = if burn {
                // The scales of what this picture draws (its overlays or not).
                let scales = legend::scales(session, &draws);
                painter.paint(size, |p| {
                    let slice = (PaneKind::Fusion, k);
                    annotate(p, [canvas, canvas], slice, session, settings, &scales);
                })
            } else {
                Vec::new()
            };
            let axis = orientation.slice_axis();
            let mut centre = [0.0; 3];
            centre[axis] = k as f64;
            let position = geometry.index_to_world(centre)[axis];
            let name = format!(
                "fusion_{}_{:04}_{:+.2}mm.png",
                orientation.name(),
                k + 1,
                position
            );
            PngSlice {
                name,
                draws,
                size,
                plane: orientation.mapping(dims, k),
                annotations,
            }
        })
        .collect();
    (pngs, painter.textures())
}

/// PatientOrientation of a picture of `orientation` as the panes show it: the directions
/// along its rows (towards the right edge) and down its columns (towards the bottom edge),
/// in DICOM's letters (F for the feet, H for the head).
fn patient_orientation(orientation: Orientation) -> String {
    let [_, right, _, bottom] = orientation.edge_letters();
    let dicom = |letter: &str| {
        match letter {
            "I" => "F",
            "S" => "H",
            other => other,
        }
        .to_string()
    };
    format!("{}\\{}", dicom(right), dicom(bottom))
}

/// The network's layers to write as DICOM series, with their series folders: the fused
/// image, then each reliability and mixer map the session has, as chosen.
fn map_folders(session: &Session, chosen: SeriesChoice) -> Vec<(LayerId, String)> {
    let mut maps = Vec::new();
    if chosen.fused {
        maps.push((LayerId::Fused, "FUSED".to_string()));
    }
    if !chosen.maps {
        return maps;
    }
    for layer in &session.layers {
        let folder = match layer.id {
            LayerId::Reliability(Side::A, s) => format!("RELIABILITY_A_S{s}"),
            LayerId::Reliability(Side::B, s) => format!("RELIABILITY_B_S{s}"),
            LayerId::Alpha(s) => format!("ALPHA_S{s}"),
            _ => continue,
        };
        maps.push((layer.id, folder));
    }
    maps
}

/// Runs `work` on its own thread; the job reports its progress and can be cancelled.
fn spawn(work: Work) -> Result<ExportJob, String> {
    let (sender, events) = channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = cancel.clone();
    std::thread::Builder::new()
        .name("export".into())
        .spawn(move || {
            let mut progress = |done, total| {
                let _ = sender.send(Progress::Step(done, total));
                !stop.load(Ordering::Relaxed)
            };
            let (outcome, exists) = run(&work, &mut progress);
            let _ = sender.send(Progress::Finished(outcome, exists));
        })
        .map_err(|e| format!("cannot start the export: {e}"))?;
    Ok(ExportJob {
        events,
        cancel,
        done: 0,
        total: 0,
        outcome: None,
        exists: false,
        files: Vec::new(),
    })
}

/// The export itself; returns the files written (or why not) and whether files existed.
fn run(
    work: &Work,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> (Result<Vec<PathBuf>, String>, bool) {
    match work.kind {
        ExportKind::Dicom => match write_dicom(work, progress) {
            Ok(files) => (Ok(files), false),
            Err(e) => {
                let exists = matches!(e, ExportError::Exists { .. });
                (Err(e.to_string()), exists)
            }
        },
        _ => match write_pngs(work, progress) {
            Ok(files) => (Ok(files), false),
            Err(e) => {
                let exists = matches!(e, PngError::Exists { .. });
                (Err(e.to_string()), exists)
            }
        },
    }
}

/// DICOM export: the chosen maps as derived series, then the pictures as displayed (RGB
/// secondary captures); all or nothing.
fn write_dicom(
    work: &Work,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<PathBuf>, ExportError> {
    let sources = [work.sources[0].as_ref(), work.sources[1].as_ref()];
    let outputs: Vec<OutputSeries<'_>> = work
        .maps
        .iter()
        .filter_map(|(id, folder)| {
            let (what, meaning) = match *id {
                LayerId::Fused => ("fusion".to_string(), Meaning::Fused),
                LayerId::Reliability(side, scale) => (
                    id.name(),
                    Meaning::Reliability {
                        study: if side == Side::A { 'A' } else { 'B' },
                        scale,
                    },
                ),
                LayerId::Alpha(scale) => (id.name(), Meaning::Alpha { scale }),
                LayerId::Study(_) => return None,
            };
            let (description, derivation) = describe(&what, sources, &work.model, meaning);
            Some(OutputSeries {
                folder: folder.clone(),
                description,
                derivation,
                volume: work.volumes.get(&id.key())?.as_ref(),
            })
        })
        .collect();
    let frame = |k: usize| -> Vec<u8> {
        let slice = &work.slices[k];
        let mut rgb = compose(&slice.draws, &work.volumes, slice.size);
        rasterize(&mut rgb, slice.size, &slice.annotations, &work.textures);
        rgb
    };
    let displayed = work.slices.first().map(|first| {
        let (description, derivation) = describe(
            "fusion as displayed",
            sources,
            &work.model,
            Meaning::Displayed,
        );
        DisplayedSeries {
            folder: "DISPLAYED_RGB".into(),
            description,
            derivation,
            size: first.size,
            count: work.slices.len(),
            patient_orientation: work.patient_orientation.clone(),
            frame: &frame,
        }
    });
    let export = FusionExport {
        reference: &work.reference,
        sources,
        outputs,
        displayed,
        anonymize: work.anonymize,
        overwrite: work.overwrite,
    };
    write_fusion(&export, &work.folder, progress)
}

/// PNG export: all or nothing, like the DICOM one.
fn write_pngs(
    work: &Work,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<PathBuf>, PngError> {
    let paths: Vec<PathBuf> = work
        .slices
        .iter()
        .map(|s| work.folder.join(&s.name))
        .collect();
    let files = write_all(&work.folder, paths, work.overwrite, progress, &mut |k| {
        let slice = &work.slices[k];
        Ok(match work.kind {
            ExportKind::RawPng => {
                let fused =
                    work.volumes
                        .get(&LayerId::Fused.key())
                        .ok_or_else(|| PngError::Write {
                            reason: "there is no fused image".into(),
                            path: work.folder.join(&slice.name),
                        })?;
                (
                    raw_values(fused, &slice.plane, slice.size),
                    slice.size,
                    PngPixels::Gray16,
                )
            }
            _ => {
                let mut rgb = compose(&slice.draws, &work.volumes, slice.size);
                rasterize(&mut rgb, slice.size, &slice.annotations, &work.textures);
                (rgb, slice.size, PngPixels::Rgb8)
            }
        })
    })?;
    Ok(files)
}

/// The fused values (0..1) on a plane as 16-bit big-endian samples (0..65535).
fn raw_values(fused: &Volume, plane: &PlaneMapping, size: [usize; 2]) -> Vec<u8> {
    let dims = fused.geometry.dims;
    let [w, h] = size;
    let mut out = Vec::with_capacity(w * h * 2);
    for y in 0..h {
        for x in 0..w {
            let (u, v) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
            let value = plane
                .voxel_at(dims, u, v)
                .map(|p| fused.value(p[0], p[1], p[2]))
                .filter(|v| v.is_finite())
                .unwrap_or(0.0);
            out.extend(sample16(value, 0.0, 1.0).to_be_bytes());
        }
    }
    out
}

/// Draws the dialog (when open): the choices, then the running or finished export.
pub fn show(
    ctx: &egui::Context,
    form: &mut ExportForm,
    job: &mut Option<ExportJob>,
    session: Option<&Session>,
    settings: &ViewSettings,
    pacs: &mut PacsPanel,
) {
    if !form.open {
        return;
    }
    let mut open = form.open;
    let mut start_now = false;
    egui::Window::new("Export").open(&mut open).show(ctx, |ui| {
        choices(ui, form);
        ui.separator();
        start_now = job_row(ui, form, job, pacs);
    });
    form.open = open;
    if start_now {
        *job = Some(match session {
            Some(session) => start(form, session, settings).unwrap_or_else(failed),
            None => failed("open two studies first".into()),
        });
    }
}

/// The form: what to export, which slices or series, with what, and where.
fn choices(ui: &mut egui::Ui, form: &mut ExportForm) {
    ui.radio_value(
        &mut form.kind,
        ExportKind::DisplayedPng,
        "fusion pane as displayed (8-bit RGB PNG)",
    );
    ui.radio_value(
        &mut form.kind,
        ExportKind::RawPng,
        "fused values, raw (16-bit gray PNG, 0..1 as 0..65535)",
    );
    ui.radio_value(
        &mut form.kind,
        ExportKind::Dicom,
        "DICOM: derived series (choose below)",
    );
    ui.separator();
    if form.kind == ExportKind::Dicom {
        ui.checkbox(&mut form.series.fused, "fused image (values 0–1, no HU)");
        ui.checkbox(&mut form.series.maps, "reliability and mixer maps");
        ui.checkbox(
            &mut form.series.displayed,
            "fusion pane as displayed (RGB secondary capture, every slice of the plane)",
        );
        ui.checkbox(
            &mut form.anonymize,
            "anonymise (identity replaced, UIDs remapped)",
        );
    } else {
        ui.horizontal(|ui| {
            ui.radio_value(&mut form.all_slices, false, "current slice");
            ui.radio_value(&mut form.all_slices, true, "all slices");
        });
    }
    if form.kind == ExportKind::DisplayedPng {
        ui.checkbox(&mut form.overlays, "with overlays");
    }
    if form.kind == ExportKind::DisplayedPng
        || (form.kind == ExportKind::Dicom && form.series.displayed)
    {
        ui.checkbox(
            &mut form.annotations,
            "with VOIs, colour scales, title and orientation letters",
        );
    }
    folder_row(ui, form);
}

/// The folder field, its "Choose…" button and why the button could not open a dialog.
fn folder_row(ui: &mut egui::Ui, form: &mut ExportForm) {
    ui.horizontal(|ui| {
        let label = ui.label("folder");
        ui.text_edit_singleline(&mut form.folder)
            .labelled_by(label.id);
        if ui.button("Choose…").clicked() {
            match path_dialog::pick_folder(rfd::FileDialog::new()) {
                Picked::Paths(folders) => {
                    if let Some(folder) = folders.first() {
                        form.folder = folder.display().to_string();
                    }
                    form.folder_note = None;
                }
                Picked::Cancelled => {}
                Picked::Unavailable => {
                    form.folder_note = Some(
                        "No folder dialog could open on this desktop (it needs the XDG \
                         desktop portal or zenity): type the folder in the field."
                            .into(),
                    );
                }
            }
        }
    });
    if let Some(note) = &form.folder_note {
        ui.colored_label(egui::Color32::from_rgb(255, 200, 80), note);
    }
}

/// The export under way (progress, cancel) or its outcome, and the buttons that start one.
/// Returns true when an export should start.
fn job_row(
    ui: &mut egui::Ui,
    form: &mut ExportForm,
    job: &mut Option<ExportJob>,
    pacs: &mut PacsPanel,
) -> bool {
    if let Some(running) = job.as_ref().filter(|j| j.is_running()) {
        ui.horizontal(|ui| {
            let fraction = running.done as f32 / running.total.max(1) as f32;
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(200.0)
                    .text(format!("{}/{} files", running.done, running.total)),
            );
            if ui.button("Cancel").clicked() {
                running.cancel();
            }
        });
        return false;
    }
    if let Some(finished) = job.as_ref() {
        match &finished.outcome {
            Some(Ok(count)) => {
                ui.label(format!("wrote {count} files to {}", form.folder));
                if form.kind == ExportKind::Dicom && !finished.files.is_empty() {
                    send_row(ui, pacs, &finished.files);
                }
            }
            Some(Err(e)) => {
                ui.colored_label(egui::Color32::LIGHT_RED, e);
            }
            None => {}
        }
    }
    let mut start_now = false;
    let exists = job.as_ref().is_some_and(|j| j.exists);
    if exists && ui.button("Overwrite the existing files").clicked() {
        form.confirm_overwrite = true;
        start_now = true;
    }
    if ui.button("Export").clicked() {
        form.confirm_overwrite = false;
        start_now = true;
    }
    start_now
}

/// "Send to PACS": the node, the button, and the send under way or its outcome.
fn send_row(ui: &mut egui::Ui, pacs: &mut PacsPanel, files: &[PathBuf]) {
    ui.horizontal(|ui| {
        pacs.node_picker(ui);
        let ready = !pacs.is_busy() && !pacs.nodes().is_empty();
        if ui
            .add_enabled(ready, egui::Button::new("Send to PACS"))
            .clicked()
        {
            pacs.send(files.to_vec());
        }
    });
    pacs.job_line(ui);
}

/// A job that ended before it began.
fn failed(reason: String) -> ExportJob {
    let (_, events) = channel();
    ExportJob {
        events,
        cancel: Arc::new(AtomicBool::new(false)),
        done: 0,
        total: 0,
        outcome: Some(Err(reason)),
        exists: false,
        files: Vec::new(),
    }
}
