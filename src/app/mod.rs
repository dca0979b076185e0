//! The desktop viewer (eframe/egui): two studies side by side, linked through patient space.
//!
//! Loading runs on a named background thread; the UI keeps drawing meanwhile. Each viewport
//! shows the slice of its own study nearest to the shared patient-space position, so two
//! studies on different grids are never paired by slice index.

pub mod gpu;
mod viewport;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};

use crate::io;
use crate::volume::Volume;
use viewport::Viewport;

/// What the viewer was asked to open.
#[derive(Clone, Debug)]
pub enum Source {
    /// A study on disk (DICOM folder, NIfTI or PNG).
    Path(PathBuf),
}

/// The viewer application.
pub struct ViewerApp {
    viewports: Vec<Viewport>,
    pending: Option<Receiver<Result<Vec<Volume>, String>>>,
    error: Option<String>,
    /// Patient-space position along the first study's slice axis (mm).
    slice_position: Option<f64>,
    /// The device fusion runs on (shared with the drawing when it is a hardware GPU).
    compute: Option<(burn::tensor::Device, String)>,
}

impl ViewerApp {
    /// Starts loading `sources` in the background.
    pub fn new(sources: Vec<Source>) -> Self {
        let (sender, receiver) = sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("load studies".into())
            .spawn(move || {
                let result = sources
                    .iter()
                    .map(|Source::Path(path)| io::load(path, None).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>();
                let _ = sender.send(result);
            });
        let error = spawned.err().map(|e| format!("cannot start loading: {e}"));
        Self {
            viewports: Vec::new(),
            pending: Some(receiver),
            error,
            slice_position: None,
            compute: None,
        }
    }

    /// Sets the device fusion runs on and how the status bar names it.
    pub fn with_compute(mut self, device: burn::tensor::Device, description: String) -> Self {
        self.compute = Some((device, description));
        self
    }

    /// The loaded studies' viewports (empty while loading).
    pub fn study_count(&self) -> usize {
        self.viewports.len()
    }

    /// Slice index shown by viewport `index`.
    pub fn shown_slice(&self, index: usize) -> Option<usize> {
        self.viewports.get(index).map(|v| v.slice)
    }

    fn poll_loading(&mut self) {
        let Some(receiver) = &self.pending else {
            return;
        };
        match receiver.try_recv() {
            Ok(Ok(volumes)) => {
                self.viewports = volumes.into_iter().map(Viewport::new).collect();
                if let Some(first) = self.viewports.first() {
                    self.slice_position = Some(first.position_of(first.slice));
                }
                self.pending = None;
            }
            Ok(Err(error)) => {
                self.error = Some(error);
                self.pending = None;
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.error = Some("the loading thread stopped".into());
                self.pending = None;
            }
        }
    }

    /// Moves the shared position by `steps` slices of the first study.
    fn scroll(&mut self, steps: i64) {
        let Some(first) = self.viewports.first() else {
            return;
        };
        let last = first.slice_count() as i64 - 1;
        let slice = (first.slice as i64 + steps).clamp(0, last.max(0)) as usize;
        let position = first.position_of(slice);
        self.slice_position = Some(position);
        for viewport in &mut self.viewports {
            viewport.go_to_position(position);
        }
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.poll_loading();
        if self.pending.is_some() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(50));
        }
        let (wheel, keys) = ui.input(|i| {
            let mut steps = 0i64;
            if i.key_pressed(egui::Key::ArrowUp) {
                steps += 1;
            }
            if i.key_pressed(egui::Key::ArrowDown) {
                steps -= 1;
            }
            if i.key_pressed(egui::Key::PageUp) {
                steps += 10;
            }
            if i.key_pressed(egui::Key::PageDown) {
                steps -= 10;
            }
            if i.key_pressed(egui::Key::Home) {
                steps = i64::MIN / 2;
            }
            if i.key_pressed(egui::Key::End) {
                steps = i64::MAX / 2;
            }
            (i.smooth_scroll_delta.y, steps)
        });
        if keys != 0 {
            self.scroll(keys);
        }
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                if let Some(error) = &self.error {
                    ui.colored_label(egui::Color32::LIGHT_RED, error);
                } else if self.pending.is_some() {
                    ui.spinner();
                    ui.label("loading studies…");
                } else if let Some(position) = self.slice_position {
                    ui.label(format!(
                        "{} studies · slice position {position:.1} mm · wheel, Up/Down, PgUp/PgDn scroll · right-drag W/L",
                        self.viewports.len()
                    ));
                }
                if let Some((_, description)) = &self.compute {
                    ui.separator();
                    ui.label(format!("fusion: {description}"));
                }
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let count = self.viewports.len().max(1);
            let width = ui.available_width() / count as f32;
            let mut scrolled = 0i64;
            ui.horizontal_top(|ui| {
                for viewport in &mut self.viewports {
                    ui.vertical(|ui| {
                        ui.set_width(width - 8.0);
                        if let Some(steps) = viewport.show(ui) {
                            scrolled += steps;
                        }
                    });
                }
            });
            if wheel.abs() > 0.0 && scrolled == 0 && ui.ui_contains_pointer() {
                scrolled = wheel.signum() as i64;
            }
            if scrolled != 0 {
                self.scroll(scrolled);
            }
        });
    }
}
