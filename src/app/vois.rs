//! Volumes of interest and distances in the viewer: the sphere tool (drag from the centre
//! out to the radius), the threshold tool (a click grows a region at 41 % of the local
//! maximum of the functional study) and the ruler (drag from one point to another: mm in
//! patient space); the session's VOIs with their statistics for every layer — studies, fused
//! image, reliability and mixer maps, which all share the pair's grid, so one region serves
//! them all — their outlines on the panes, and the table (`volume::voi` computes).

use std::cmp::Ordering;

use egui::{Color32, Rect, Stroke, Ui, Vec2};

use super::layers::LayerId;
use super::marks::{Measurement, SphereDrag, Voi, VoiKind};
use super::path_dialog::{self, Picked};
use super::session::Session;
use crate::volume::geometry::{norm, sub};
use crate::volume::plane::Orientation;
use crate::volume::voi::{self, Region, Shape, Statistics, Threshold};

/// What the primary mouse button does in a pane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tool {
    /// Click: crosshair; Shift+drag: pan.
    #[default]
    Navigate,
    /// Drag from a VOI's centre out to its radius.
    Sphere,
    /// Click a lesion: a region of the voxels at or above 41 % of its local maximum.
    Threshold,
    /// Drag a rectangle in a pane: a box one slice deep.
    Box,
    /// Drag from one point to another: their distance in mm.
    Ruler,
}

/// The fraction of the local maximum the threshold tool starts with (the common 41 % of
/// SUVmax); the VOI panel sets another, or a fixed value.
pub const THRESHOLD_FRACTION: f32 = 0.41;

/// The tools' settings (set in the VOI panel).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToolOptions {
    /// The rule the "grow" tool grows by.
    pub grow: Threshold,
    /// How many slices deep the "box" tool's boxes are, centred on the slice drawn on.
    pub box_slices: usize,
}

impl Default for ToolOptions {
    fn default() -> Self {
        Self {
            grow: Threshold::OfLocalMax(THRESHOLD_FRACTION),
            box_slices: 1,
        }
    }
}

/// Grown regions stop at this many voxels.
const GROW_LIMIT: usize = 500_000;

/// Patient position of continuous voxel coordinates on the pair's grid.
fn world(session: &Session, voxel: [f32; 3]) -> [f64; 3] {
    world_of(&session.pair.a.geometry, voxel)
}

fn world_of(geometry: &crate::volume::Geometry, voxel: [f32; 3]) -> [f64; 3] {
    geometry.index_to_world(voxel.map(|v| f64::from(v) - 0.5))
}

/// The primary button in a pane with `tool`, at continuous voxel coordinates `point` (none
/// when the pointer has left the pane); `pressed_at` is where the button went down (a drag
/// is only recognised some points later). Returns a message when a VOI could not be made
/// or was clipped.
pub fn pointer(
    response: &egui::Response,
    (tool, options): (Tool, ToolOptions),
    session: &mut Session,
    (point, pressed_at): (Option<[f32; 3]>, Option<[f32; 3]>),
    axis: usize,
) -> Option<String> {
    let primary = egui::PointerButton::Primary;
    match tool {
        Tool::Navigate => None,
        Tool::Ruler => {
            if let Some(point) = point {
                if response.drag_started_by(primary) || session.ruler_drag.is_none() {
                    let from = pressed_at.unwrap_or(point);
                    session.ruler_drag = Some(measurement(session, from, from));
                }
                if let Some(drag) = session.ruler_drag {
                    session.ruler_drag = Some(measurement(session, drag.from, point));
                }
            }
            if !response.drag_stopped_by(primary) && !response.clicked_by(primary) {
                return None;
            }
            let drag = session.ruler_drag.take()?;
            if drag.mm <= 0.0 {
                return Some("drag from one point to the other to measure".into());
            }
            session.measurements.push(drag);
            None
        }
        Tool::Sphere => {
            if let Some(point) = point {
                if response.drag_started_by(primary) || session.sphere_drag.is_none() {
                    session.sphere_drag = Some(SphereDrag {
                        centre: pressed_at.unwrap_or(point),
                        radius_mm: 0.0,
                    });
                }
                let to = world(session, point);
                if let Some(drag) = &mut session.sphere_drag {
                    drag.radius_mm = norm(sub(to, world_of(&session.pair.a.geometry, drag.centre)));
                }
            }
            if !response.drag_stopped_by(primary) && !response.clicked_by(primary) {
                return None;
            }
            let drag = session.sphere_drag.take()?;
            if drag.radius_mm < 0.5 {
                return Some("drag out from the centre to give the sphere a radius".into());
            }
            add_sphere(session, drag.centre, drag.radius_mm)
        }
        Tool::Box => {
            if let Some(point) = point {
                if response.drag_started_by(primary) || session.box_drag.is_none() {
                    session.box_drag = Some([pressed_at.unwrap_or(point); 2]);
                }
                if let Some(drag) = &mut session.box_drag {
                    drag[1] = point;
                }
            }
            if !response.drag_stopped_by(primary) && !response.clicked_by(primary) {
                return None;
            }
            let [from, to] = session.box_drag.take()?;
            let (low, high) = box_corners(from, to, axis, options.box_slices);
            if (0..3).any(|a| high[a] - low[a] < 0.5) {
                return Some("drag a rectangle to make a box".into());
            }
            add_box(session, low, high)
        }
        Tool::Threshold => {
            let point = point?;
            if !response.clicked_by(primary) {
                return None;
            }
            let dims = session.dims();
            if (0..3).any(|a| point[a] < 0.0 || point[a] >= dims[a] as f32) {
                return None;
            }
            let seed = point.map(|v| v as usize);
            let layer = session.reading_study();
            add_grown(session, seed, layer, options.grow)
        }
    }
}

/// The distance between two points of the pair's grid.
pub fn measurement(session: &Session, from: [f32; 3], to: [f32; 3]) -> Measurement {
    Measurement {
        from,
        to,
        mm: norm(sub(world(session, to), world(session, from))),
    }
}

/// Adds a sphere VOI centred at continuous voxel coordinates `centre` of the pair's grid.
/// Returns a message when it cannot be made or was clipped.
pub fn add_sphere(session: &mut Session, centre: [f32; 3], radius_mm: f64) -> Option<String> {
    let shape = Shape::Sphere {
        centre: world(session, centre),
        radius_mm,
    };
    let kind = VoiKind::Sphere { centre, radius_mm };
    match voi::shape_region(&session.pair.a.geometry, &shape) {
        Ok(region) => add(session, kind, region),
        Err(error) => Some(error.to_string()),
    }
}

/// The corners of the box dragged from `from` to `to` in a pane whose slice axis is
/// `axis`: the rectangle in plane, `slices` whole slices in depth centred on the one drawn on.
fn box_corners(from: [f32; 3], to: [f32; 3], axis: usize, slices: usize) -> ([f32; 3], [f32; 3]) {
    let mut low = [0.0; 3];
    let mut high = [0.0; 3];
    let slices = slices.max(1);
    for a in 0..3 {
        if a == axis {
            low[a] = from[a].floor() - ((slices - 1) / 2) as f32;
            high[a] = low[a] + slices as f32;
        } else {
            low[a] = from[a].min(to[a]);
            high[a] = from[a].max(to[a]);
        }
    }
    (low, high)
}

/// Adds a box VOI between corners `low` and `high` (continuous voxel coordinates of the
/// pair's grid, whose axes run along the patient's). Returns a message when it cannot be
/// made or was clipped.
pub fn add_box(session: &mut Session, low: [f32; 3], high: [f32; 3]) -> Option<String> {
    let shape = Shape::Box {
        corner_a: world(session, low),
        corner_b: world(session, high),
    };
    match voi::shape_region(&session.pair.a.geometry, &shape) {
        Ok(region) => add(session, VoiKind::Box { low, high }, region),
        Err(error) => Some(error.to_string()),
    }
}

/// Adds a VOI grown on `layer` from `seed`. Returns a message when it cannot be made.
pub fn add_grown(
    session: &mut Session,
    seed: [usize; 3],
    layer: LayerId,
    threshold: Threshold,
) -> Option<String> {
    let volume = &session.layer(layer)?.volume;
    match voi::grow_region(volume, seed, threshold, GROW_LIMIT) {
        Ok(region) => add(
            session,
            VoiKind::Grown {
                seed,
                layer,
                threshold,
            },
            region,
        ),
        Err(error) => Some(error.to_string()),
    }
}

/// Adds a VOI with its statistics; a clipped one says so.
fn add(session: &mut Session, kind: VoiKind, region: Region) -> Option<String> {
    let clipped = region.clipped;
    session.vois_made += 1;
    let number = session.vois_made;
    let mut voi = Voi {
        name: format!("VOI {number}"),
        kind,
        region,
        statistics: Vec::new(),
    };
    voi.statistics = statistics(session, &voi);
    session.vois.push(voi);
    clipped.then(|| format!("VOI {number} was clipped at the edge of the volume"))
}

/// Statistics of every layer with values inside `voi`. The study that was resampled onto the
/// pair's grid is measured on its own grid, as loaded (as `dualmine stats` measures it): its
/// values there are the scanner's, not interpolated ones. That needs the two studies in one
/// patient space, so a study put on the grid through a registration is measured on the
/// pair's grid, as every other layer is.
fn statistics(session: &Session, voi: &Voi) -> Vec<(LayerId, Statistics)> {
    let own_grid = own_grid_statistics(session, voi);
    session
        .layers
        .iter()
        .filter_map(|l| {
            let statistics = match &own_grid {
                Some((id, statistics)) if *id == l.id => statistics.clone(),
                _ => voi::statistics(&l.volume, &voi.region),
            };
            statistics.map(|s| (l.id, s))
        })
        .collect()
}

/// The resampled study's layer and its statistics inside `voi` on its own grid, when the
/// studies share one patient space; `None` otherwise.
fn own_grid_statistics(session: &Session, voi: &Voi) -> Option<(LayerId, Option<Statistics>)> {
    let pair = &session.pair;
    let original = pair.original_other.as_deref()?;
    if session.registration.is_some() || pair.frame_warning.is_some() {
        return None;
    }
    let id = LayerId::Study(pair.reference.other());
    let region = match &voi.kind {
        VoiKind::Sphere { centre, radius_mm } => {
            let shape = Shape::Sphere {
                centre: world(session, *centre),
                radius_mm: *radius_mm,
            };
            voi::shape_region(&original.geometry, &shape)
        }
        VoiKind::Box { low, high } => {
            let shape = Shape::Box {
                corner_a: world(session, *low),
                corner_b: world(session, *high),
            };
            voi::shape_region(&original.geometry, &shape)
        }
        // A region grown on this study is grown again on its own grid from the same point;
        // one grown on another layer has no counterpart there.
        VoiKind::Grown {
            seed,
            layer,
            threshold,
        } if *layer == id => {
            let point = world(session, seed.map(|v| v as f32 + 0.5));
            let dims = original.geometry.dims;
            let own_seed = original.geometry.world_to_index(point).and_then(|index| {
                let rounded = index.map(f64::round);
                (0..3)
                    .all(|a| rounded[a] >= 0.0 && rounded[a] < dims[a] as f64)
                    .then(|| rounded.map(|v| v as usize))
            });
            match own_seed {
                Some(own_seed) => voi::grow_region(original, own_seed, *threshold, GROW_LIMIT),
                None => Err(voi::VoiError::Outside),
            }
        }
        VoiKind::Grown { .. } => return None,
    };
    // A VOI that misses the study's own grid has no values of it.
    Some((id, region.ok().and_then(|r| voi::statistics(original, &r))))
}

/// Recomputes every VOI's statistics (after fusion has filled the network's layers).
pub fn refresh(session: &mut Session) {
    let fresh: Vec<_> = session
        .vois
        .iter()
        .map(|v| statistics(session, v))
        .collect();
    for (voi, statistics) in session.vois.iter_mut().zip(fresh) {
        voi.statistics = statistics;
    }
}

/// Outlines of the sphere VOIs (and the one being dragged) where they cut the pane's plane,
/// and a marker at each grown VOI's seed on its slice.
pub fn paint(
    painter: &egui::Painter,
    image: Rect,
    (orientation, slice): (Orientation, usize),
    session: &Session,
    box_slices: usize,
) {
    let dims = session.dims();
    let spacing = session.pair.a.geometry.spacing;
    let axis = orientation.slice_axis();
    let plane = slice as f32 + 0.5;
    let size_mm = orientation.size_mm(&session.pair.a.geometry);
    let px_per_mm = image.width() / size_mm[0] as f32;
    let at = |voxel: [f32; 3]| {
        let [u, v] = orientation.image_position(dims, voxel);
        image.min + Vec2::new(u, v) * image.size()
    };
    let colour = Color32::from_rgb(80, 255, 120);
    let circle = |centre: [f32; 3], radius_mm: f64, label: &str| {
        let distance = f64::from(centre[axis] - plane) * spacing[axis];
        if distance.abs() >= radius_mm {
            return;
        }
        let radius = (radius_mm.powi(2) - distance.powi(2)).sqrt() as f32 * px_per_mm;
        let middle = at(centre);
        painter.circle_stroke(middle, radius, Stroke::new(1.5, colour));
        painter.text(
            middle + Vec2::new(radius * 0.72, -radius * 0.72),
            egui::Align2::LEFT_BOTTOM,
            label,
            egui::FontId::proportional(11.0),
            colour,
        );
    };
    let rectangle = |low: [f32; 3], high: [f32; 3], label: &str| {
        if plane < low[axis] || plane > high[axis] {
            return;
        }
        let corners = Rect::from_two_pos(at(low), at(high));
        painter.rect_stroke(
            corners,
            0.0,
            Stroke::new(1.5, colour),
            egui::StrokeKind::Middle,
        );
        painter.text(
            corners.right_top() + Vec2::new(3.0, 0.0),
            egui::Align2::LEFT_BOTTOM,
            label,
            egui::FontId::proportional(11.0),
            colour,
        );
    };
    for voi in &session.vois {
        match &voi.kind {
            VoiKind::Sphere { centre, radius_mm } => circle(*centre, *radius_mm, &voi.name),
            VoiKind::Box { low, high } => rectangle(*low, *high, &voi.name),
            VoiKind::Grown { .. } => {
                let segments = voi::outline(&voi.region, dims, axis, slice);
                for [p, q] in &segments {
                    painter.line_segment([at(*p), at(*q)], Stroke::new(1.5, colour));
                }
                let top = segments.iter().flatten().map(|p| at(*p)).min_by(|p, q| {
                    (p.y, -p.x)
                        .partial_cmp(&(q.y, -q.x))
                        .unwrap_or(Ordering::Equal)
                });
                if let Some(top) = top {
                    painter.text(
                        top + Vec2::new(3.0, -2.0),
                        egui::Align2::LEFT_BOTTOM,
                        &voi.name,
                        egui::FontId::proportional(11.0),
                        colour,
                    );
                }
            }
        }
    }
    if let Some([from, to]) = session.box_drag {
        let (low, high) = box_corners(from, to, axis, box_slices);
        rectangle(low, high, "");
    }
    if let Some(drag) = &session.sphere_drag {
        circle(
            drag.centre,
            drag.radius_mm,
            &format!("{:.1} mm", drag.radius_mm),
        );
    }
    // Rulers lie in the plane they were drawn in: shown on that plane's slice.
    let on_slice = |m: &Measurement| {
        [m.from[axis], m.to[axis]]
            .iter()
            .all(|c| (*c - plane).abs() < 0.5)
    };
    let ruler = Color32::from_rgb(120, 220, 255);
    for m in session.measurements.iter().chain(&session.ruler_drag) {
        if on_slice(m) {
            let (a, b) = (at(m.from), at(m.to));
            painter.line_segment([a, b], Stroke::new(1.5, ruler));
            painter.text(
                b + Vec2::new(6.0, 0.0),
                egui::Align2::LEFT_CENTER,
                format!("{:.1} mm", m.mm),
                egui::FontId::proportional(11.0),
                ruler,
            );
        }
    }
}

/// The VOI table: per VOI its name (editable), "go to", delete, and per layer the
/// statistics in that layer's units; "copy CSV" puts every number on the clipboard.
pub fn panel(ui: &mut Ui, session: &mut Session, options: &mut ToolOptions) {
    ui.heading("Volumes of interest");
    threshold_setting(ui, &mut options.grow);
    ui.horizontal(|ui| {
        ui.label("box depth");
        ui.add(
            egui::DragValue::new(&mut options.box_slices)
                .range(1..=999)
                .suffix(" slices"),
        );
    });
    if let Some(message) = &session.voi_message {
        ui.colored_label(Color32::from_rgb(255, 200, 80), message);
    }
    if session.vois.is_empty() {
        ui.small("Tools: \"sphere\" (drag from the centre), \"41 %\" (click a lesion), \"box\" (drag a rectangle).");
        distances(ui, session);
        return;
    }
    ui.horizontal(|ui| {
        if ui.small_button("copy CSV").clicked() {
            ui.ctx().copy_text(csv(session));
        }
        if ui.small_button("save CSV…").clicked() {
            session.voi_message = save_csv(session);
        }
    });
    let mut remove = None;
    let mut go_to = None;
    for (index, voi) in session.vois.iter_mut().enumerate() {
        ui.push_id(index, |ui| {
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut voi.name).desired_width(90.0));
                if ui.small_button("go to").clicked() {
                    go_to = Some(voi.centre());
                }
                if ui.small_button("delete").clicked() {
                    remove = Some(index);
                }
            });
            if voi.region.clipped {
                ui.small("clipped at the edge of the volume");
            }
            statistics_table(ui, voi);
        });
        ui.separator();
    }
    if let Some(centre) = go_to {
        session.cursor = centre;
    }
    if let Some(index) = remove {
        session.vois.remove(index);
        // What was said of the last VOI made (clipped, or why one could not be made) no
        // longer holds once a VOI is gone.
        session.voi_message = None;
    }
    distances(ui, session);
}

/// The list of distances, each with "delete".
fn distances(ui: &mut Ui, session: &mut Session) {
    if session.measurements.is_empty() {
        return;
    }
    ui.label("Distances");
    let mut remove = None;
    for (index, m) in session.measurements.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(format!("{:.1} mm", m.mm));
            if ui
                .push_id(index, |ui| ui.small_button("delete"))
                .inner
                .clicked()
            {
                remove = Some(index);
            }
        });
    }
    if let Some(index) = remove {
        session.measurements.remove(index);
    }
}

/// The "grow" tool's rule: a percentage of the local maximum or a fixed value (in the grown
/// study's units).
fn threshold_setting(ui: &mut Ui, threshold: &mut Threshold) {
    ui.horizontal(|ui| {
        ui.label("grow at");
        let mut percent = matches!(threshold, Threshold::OfLocalMax(_));
        let before = percent;
        ui.selectable_value(&mut percent, true, "% of local max");
        ui.selectable_value(&mut percent, false, "value");
        if percent != before {
            *threshold = if percent {
                Threshold::OfLocalMax(THRESHOLD_FRACTION)
            } else {
                Threshold::Absolute(2.5)
            };
        }
        match threshold {
            Threshold::OfLocalMax(fraction) => {
                let mut shown = *fraction * 100.0;
                if ui
                    .add(
                        egui::DragValue::new(&mut shown)
                            .range(1.0..=100.0)
                            .suffix(" %"),
                    )
                    .changed()
                {
                    *fraction = shown / 100.0;
                }
            }
            Threshold::Absolute(value) => {
                ui.add(egui::DragValue::new(value).speed(0.05));
            }
        }
    });
}

/// Asks where, and writes every VOI's statistics there as CSV (atomically). Returns what
/// to tell the user.
fn save_csv(session: &Session) -> Option<String> {
    let dialog = rfd::FileDialog::new()
        .add_filter("CSV", &["csv"])
        .set_file_name("vois.csv");
    let path = match path_dialog::save_file(dialog) {
        Picked::Paths(mut paths) => paths.pop()?,
        Picked::Cancelled => return None,
        Picked::Unavailable => {
            return Some(format!(
                "{} Here \"copy CSV\" puts the table on the clipboard.",
                path_dialog::NO_DIALOG.trim_end_matches(": type the path instead.")
            ));
        }
    };
    let text = csv(session);
    match crate::io::atomic::write_atomically(&path, true, |out| out.write_all(text.as_bytes())) {
        Ok(()) => Some(format!("saved {}", path.display())),
        Err(e) => Some(format!("cannot write {}: {e}", path.display())),
    }
}

/// One VOI's statistics for every layer, narrow enough for the side panel (a study's row
/// names its units; the network's layers have none): it scrolls sideways inside the panel
/// when the panel is dragged narrower, instead of widening it.
fn statistics_table(ui: &mut Ui, voi: &Voi) {
    egui::ScrollArea::horizontal()
        .id_salt("voi statistics")
        .auto_shrink([false, true])
        .show(ui, |ui| {
            egui::Grid::new("voi statistics")
                .striped(true)
                .show(ui, |ui| {
                    for name in ["layer", "mean", "max", "peak", "ml"] {
                        ui.small(name);
                    }
                    ui.end_row();
                    for (layer, s) in &voi.statistics {
                        match layer {
                            LayerId::Study(_) => {
                                ui.small(format!("{} {}", layer.short_name(), s.units))
                            }
                            _ => ui.small(layer.short_name()),
                        };
                        ui.small(format!("{:.3}", s.mean));
                        ui.small(format!("{:.3}", s.max));
                        ui.small(s.peak.map_or("—".into(), |p| format!("{p:.3}")));
                        ui.small(format!("{:.2}", s.volume_ml));
                        ui.end_row();
                    }
                });
        });
}

/// Every VOI's statistics as CSV, one row per VOI and layer.
pub fn csv(session: &Session) -> String {
    let mut out = String::from("voi,layer,units,voxels,volume_ml,min,max,mean,std,peak\n");
    for voi in &session.vois {
        for (layer, s) in &voi.statistics {
            out.push_str(&format!(
                "\"{}\",\"{}\",{},{},{},{},{},{},{},{}\n",
                voi.name.replace('"', "\"\""),
                layer.name(),
                s.units,
                s.voxels,
                s.volume_ml,
                s.min,
                s.max,
                s.mean,
                s.std,
                s.peak.map_or(String::new(), |p| p.to_string())
            ));
        }
    }
    out
}
