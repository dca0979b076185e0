//! The toolbar (Open, PACS, the File menu with export and sessions, orientation, layout,
//! slice slider, tools, help) and the status bar (fusion device, progress with pause/cancel
//! or fusion time, memory held, frame time).

use egui::Color32;

use super::ViewerApp;
use super::fusion_job::SliceState;
use super::pane::{Layout, PaneKind};
use super::render;
use super::studies::Side;
use super::vois::Tool;
use crate::volume::plane::Orientation;

impl ViewerApp {
    pub(super) fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui.button("Open…").clicked() {
                self.open_dialog();
            }
            if ui.button("PACS…").clicked() {
                self.pacs.open = !self.pacs.open;
            }
            ui.menu_button("File", |ui| {
                if ui.button("Export…").clicked() {
                    self.export_form.open = !self.export_form.open;
                    ui.close();
                }
                if ui.button("Save session…").clicked() {
                    self.save_session_dialog();
                    ui.close();
                }
                if ui.button("Open session…").clicked() {
                    self.open_session_dialog();
                    ui.close();
                }
            });
            ui.separator();
            for orientation in Orientation::ALL {
                ui.selectable_value(
                    &mut self.settings.orientation,
                    orientation,
                    orientation.name(),
                );
            }
            ui.separator();
            ui.selectable_value(
                &mut self.settings.layout,
                Layout::SideBySide,
                "A | B | fusion",
            );
            for kind in [
                PaneKind::Study(Side::A),
                PaneKind::Study(Side::B),
                PaneKind::Fusion,
            ] {
                ui.selectable_value(&mut self.settings.layout, Layout::Single(kind), kind.name());
            }
            ui.selectable_value(&mut self.settings.layout, Layout::Planes, "3 planes");
            ui.selectable_value(&mut self.settings.layout, Layout::WithMip, "MIP")
                .on_hover_text("fusion beside a PET/SPECT maximum-intensity projection");
            ui.separator();
            if let Some(session) = &mut self.session {
                let orientation = self.settings.orientation;
                let count = orientation.slice_count(session.dims());
                let mut slice = session.slice(orientation) + 1;
                let slider = egui::Slider::new(&mut slice, 1..=count.max(1)).text("slice");
                // A short track keeps the whole toolbar within 1280 points.
                ui.spacing_mut().slider_width = 56.0;
                if ui.add(slider).changed() {
                    let axis = orientation.slice_axis();
                    session.cursor[axis] = (slice - 1) as f32 + 0.5;
                }
            }
            ui.separator();
            for (tool, name, hint) in [
                (Tool::Navigate, "point", "click: crosshair; Shift+drag: pan"),
                (
                    Tool::Sphere,
                    "sphere",
                    "drag from a lesion's centre out to the radius",
                ),
                (
                    Tool::Threshold,
                    "grow",
                    "click a lesion: the voxels at or above the VOI panel's threshold \
                     (41 % of the local maximum unless set otherwise)",
                ),
                (
                    Tool::Box,
                    "box",
                    "drag a rectangle: a box VOI one slice deep",
                ),
                (
                    Tool::Ruler,
                    "ruler",
                    "drag from one point to another: distance in mm",
                ),
            ] {
                ui.selectable_value(&mut self.settings.tool, tool, name)
                    .on_hover_text(hint);
            }
            ui.separator();
            if ui.button("Help").clicked() {
                self.help_open = !self.help_open;
            }
        });
    }

    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(error) = &self.error {
                ui.colored_label(Color32::LIGHT_RED, error);
                ui.separator();
            }
            if self.loading.is_some() {
                ui.spinner();
                ui.label("loading studies…");
                ui.separator();
            }
            let description = self
                .compute
                .as_ref()
                .map(|c| c.1.as_str())
                .unwrap_or("none");
            ui.label(format!("fusion device: {description}"));
            ui.separator();
            let mut restart = false;
            if let Some(session) = &mut self.session {
                match &session.job {
                    Some(job) if job.is_running() => {
                        let fraction = job.done as f32 / job.total.max(1) as f32;
                        ui.add(
                            egui::ProgressBar::new(fraction)
                                .desired_width(160.0)
                                .text(format!("fusing {}/{} slices", job.done, job.total)),
                        );
                        let in_view = session.slice(Orientation::Axial);
                        if job.slice_state(in_view) == Some(SliceState::Provisional) {
                            ui.label("slice in view: its own mix until the volume's is taken")
                                .on_hover_text(
                                    "The volume is fused with one mix of its studies, taken \
                                     from 16 of its slices; until then the slice in view is \
                                     shown fused with its own",
                                );
                        }
                        let paused = job.is_paused();
                        if ui.button(if paused { "Resume" } else { "Pause" }).clicked() {
                            job.set_paused(!paused);
                        }
                        if ui.button("Cancel").clicked() {
                            job.cancel();
                        }
                    }
                    Some(job) => {
                        match (&job.error, job.elapsed) {
                            (Some(e), _) => ui.colored_label(Color32::LIGHT_RED, e),
                            (None, Some(t)) => ui.label(format!(
                                "fused {} slices in {:.1} s ({})",
                                job.total,
                                t.as_secs_f32(),
                                job.task
                            )),
                            _ => ui.label(""),
                        };
                        restart = ui.button("Fuse again").clicked();
                    }
                    None if session.pair.b.is_some() => {
                        restart = ui.button("Fuse").clicked();
                    }
                    None => {}
                }
                let gpu_bytes = self
                    .render_state
                    .as_ref()
                    .and_then(|s| render::with_renderer(s, |r, _, _| r.held_bytes()))
                    .unwrap_or(0);
                ui.separator();
                ui.label(format!(
                    "memory: {:.0} MB host, {:.0} MB GPU",
                    session.held_bytes() as f64 / 1e6,
                    gpu_bytes as f64 / 1e6
                ));
            }
            if restart {
                if let Some(session) = &mut self.session {
                    session.fusion_allowed = true;
                }
                self.start_fusion();
            }
            let last = self.frame_times.last();
            if let Some(dt) = last {
                ui.separator();
                ui.label(format!("frame {:.1} ms", dt * 1000.0));
            }
        });
    }
}
