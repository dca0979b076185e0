//! The viewer's side panels and windows: the layer list (toggle, opacity, colour map,
//! window presets), the value read-out at the cursor, the series picker and the help panel.

use egui::Ui;

use super::layers::{Layer, LayerId, Style, format_value};
use super::pane::{Compare, ViewSettings};
use super::session::Session;
use super::studies::Side;
use crate::io::dicom::SeriesSummary;
use crate::volume::colormap::ColorMap;

/// Keyboard and mouse shortcuts, as listed in the help panel.
pub const SHORTCUTS: [(&str, &str); 18] = [
    ("Mouse wheel, Up / Down", "next / previous slice"),
    ("Page Up / Page Down", "10 slices"),
    ("Home / End", "first / last slice"),
    ("Left click or drag", "move the crosshair"),
    ("Right drag", "window (horizontal) and level (vertical)"),
    ("Ctrl + wheel", "zoom"),
    ("Middle drag, Shift + left drag", "pan"),
    (
        "A / C / S",
        "axial, coronal, sagittal (in three planes: the one keys scroll)",
    ),
    ("V", "side by side or one large view"),
    (
        "M",
        "fusion in three planes (axial, coronal, sagittal) or back",
    ),
    ("F", "fusion overlay on / off"),
    (
        "Left / Right",
        "turn the MIP (layout \"MIP\"; a drag on it turns it too, a click goes to a hot spot)",
    ),
    ("R", "reset zoom and pan"),
    ("O", "open studies"),
    ("E", "export (PNG, DICOM; then send to a PACS)"),
    ("P", "PACS: search, retrieve and open studies"),
    ("F1 or ?", "this help"),
    ("Drop folders on the window", "open them"),
];

/// The layer list: every layer with its switches. Returns the detail control d when the
/// reader has just chosen another (the fusion then runs again at it).
pub fn layer_panel(ui: &mut Ui, session: &mut Session, settings: &mut ViewSettings) -> Option<f32> {
    ui.heading("Layers");
    let mut detail = session.detail_or_default();
    let (mut detail_moved, mut detail_chosen) = (false, false);
    let reference = session.pair.reference;
    let ids: Vec<LayerId> = session.layers.iter().map(|l| l.id).collect();
    for id in ids {
        let Some(layer) = session.layer_mut(id) else {
            continue;
        };
        let name = match id {
            LayerId::Study(side) if side == reference => format!("{} (base)", id.name()),
            _ => id.name(),
        };
        ui.push_id(id.key(), |ui| {
            ui.horizontal(|ui| {
                ui.checkbox(&mut layer.style.visible, name);
                if ui
                    .selectable_label(settings.selected == id, "W/L")
                    .on_hover_text("right-drag in the fusion pane sets this layer's window")
                    .clicked()
                {
                    settings.selected = id;
                }
            });
            if layer.style.visible {
                if !matches!(id, LayerId::Study(side) if side == reference) {
                    let mut percent = layer.style.opacity * 100.0;
                    let slider = egui::Slider::new(&mut percent, 0.0..=100.0)
                        .suffix(" %")
                        .text("opacity");
                    if ui.add(slider).changed() {
                        layer.style.opacity = percent / 100.0;
                    }
                }
                egui::ComboBox::new("colormap", "colour map")
                    .selected_text(layer.style.colormap.name())
                    .width(80.0)
                    .show_ui(ui, |ui| {
                        for map in ColorMap::ALL {
                            ui.selectable_value(&mut layer.style.colormap, map, map.name());
                        }
                    });
                if id == LayerId::Fused {
                    (detail_moved, detail_chosen) = detail_slider(ui, &mut detail);
                    chroma_choice(ui, &mut layer.style.chroma_from);
                }
                if matches!(id, LayerId::Study(side) if side != reference) {
                    threshold_choice(ui, layer);
                }
                if !layer.presets.is_empty() {
                    ui.horizontal_wrapped(|ui| {
                        for (name, window) in &layer.presets {
                            if ui.small_button(*name).clicked() {
                                layer.style.window = *window;
                            }
                        }
                    });
                }
            }
        });
        ui.separator();
    }
    ui.checkbox(&mut settings.show_legend, "colour scales on the panes");
    ui.separator();
    ui.heading("Compare A and B");
    ui.horizontal(|ui| {
        ui.selectable_value(&mut settings.compare, Compare::Off, "off");
        ui.selectable_value(&mut settings.compare, Compare::Checkerboard, "checkerboard");
        ui.selectable_value(&mut settings.compare, Compare::Curtain, "curtain");
    });
    match settings.compare {
        Compare::Curtain => {
            ui.add(egui::Slider::new(&mut settings.curtain, 0.0..=1.0).text("curtain"));
        }
        Compare::Checkerboard => {
            ui.add(egui::Slider::new(&mut settings.checker_tiles, 2.0..=32.0).text("tiles"));
        }
        Compare::Off => {}
    }
    if detail_moved {
        session.detail = Some(detail);
    }
    detail_chosen.then_some(detail)
}

/// The fused image's detail control: 0 faithful (close to the average of the two studies),
/// 1 the most local detail (each pixel leaning to the study its reliability map trusts).
/// Whether it moved, and whether the reader has settled on the value (let go of the
/// slider, or typed it).
fn detail_slider(ui: &mut Ui, detail: &mut f32) -> (bool, bool) {
    let response = ui
        .add(
            egui::Slider::new(detail, 0.0..=1.0)
                .step_by(0.05)
                .text("detail"),
        )
        .on_hover_text(
            "0: faithful, close to the average of the two studies; 1: the most local detail, \
             each pixel leaning to the study its reliability map trusts. The slice in view is \
             fused again first, the rest in the background.",
        );
    let settled = response.drag_stopped() || (response.changed() && !response.dragged());
    (response.changed(), settled)
}

/// Which study, if any, lends the fused image its colours (its colour map's chroma under
/// the fused luminance).
fn chroma_choice(ui: &mut Ui, chroma_from: &mut Option<Side>) {
    let name = |choice: Option<Side>| match choice {
        None => "none (grey)",
        Some(Side::A) => "study A",
        Some(Side::B) => "study B",
    };
    egui::ComboBox::new("chroma", "colours from")
        .selected_text(name(*chroma_from))
        .width(80.0)
        .show_ui(ui, |ui| {
            for choice in [None, Some(Side::A), Some(Side::B)] {
                ui.selectable_value(chroma_from, choice, name(choice));
            }
        })
        .response
        .on_hover_text(
            "the fused luminance shown with this study's colour-map colours (YCbCr chroma), \
             as the benchmark fuses colour PET",
        );
}

/// Every layer's value at the voxel under the pointer (else the crosshair), in its units.
pub fn readout(ui: &mut Ui, session: &Session) {
    ui.heading("Values");
    let voxel = session.hover.unwrap_or(session.cursor.map(|c| c as usize));
    let dims = session.dims();
    if (0..3).any(|a| voxel[a] >= dims[a]) {
        return;
    }
    let position = session
        .pair
        .a
        .geometry
        .index_to_world(voxel.map(|v| v as f64));
    ui.label(format!(
        "voxel ({}, {}, {}) · patient ({:.1}, {:.1}, {:.1}) mm",
        voxel[0], voxel[1], voxel[2], position[0], position[1], position[2]
    ));
    egui::Grid::new("values").striped(true).show(ui, |ui| {
        for layer in &session.layers {
            ui.label(layer.id.name());
            ui.label(format_value(layer.value(voxel), &layer.volume.units));
            ui.end_row();
        }
    });
}

/// The series picker: returns the chosen series (1-based) or `Some(0)` for cancel.
pub fn series_picker(ctx: &egui::Context, series: &[SeriesSummary]) -> Option<usize> {
    let mut choice = None;
    egui::Window::new("Choose a series")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label("This folder holds several series. Which one should be opened?");
            egui::Grid::new("series").striped(true).show(ui, |ui| {
                for header in ["", "modality", "description", "slices", "size"] {
                    ui.strong(header);
                }
                ui.end_row();
                for (index, s) in series.iter().enumerate() {
                    if ui.button(format!("Open #{}", index + 1)).clicked() {
                        choice = Some(index + 1);
                    }
                    ui.label(&s.modality);
                    ui.label(&s.description);
                    ui.label(s.frames.max(s.files).to_string());
                    ui.label(format!("{}×{}", s.columns, s.rows));
                    ui.end_row();
                }
            });
            if ui.button("Cancel").clicked() {
                choice = Some(0);
            }
        });
    choice
}

/// The help panel.
pub fn help(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new("Help: shortcuts")
        .open(open)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                for (keys, action) in SHORTCUTS {
                    ui.strong(keys);
                    ui.label(action);
                    ui.end_row();
                }
            });
        });
}

/// The overlay's lower threshold: on or off, and its value in the layer's units (below it
/// the layers beneath show unchanged).
fn threshold_choice(ui: &mut Ui, layer: &mut Layer) {
    ui.horizontal(|ui| {
        let mut on = layer.style.threshold.is_some();
        let toggle = ui
            .checkbox(&mut on, "threshold")
            .on_hover_text("below this value the overlay is not drawn: the anatomy shows");
        if toggle.changed() {
            layer.style.threshold = on.then(|| Style::default_threshold(layer.style.window));
        }
        if let Some(value) = &mut layer.style.threshold {
            let window = layer.style.window;
            let speed = (window.width / 200.0).max(1e-3);
            ui.add(
                egui::DragValue::new(value)
                    .speed(speed)
                    .suffix(format!(" {}", layer.volume.units)),
            );
        }
    });
}
