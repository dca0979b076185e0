//! One view pane: a plane through the pair's grid with its layers drawn on the GPU, the
//! linked crosshair, the colour scales of what it draws (`legend`) and the mouse
//! interactions (wheel: slice, Ctrl+wheel: zoom, left: crosshair, middle or Shift+left drag:
//! pan, right drag: window/level).

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

use super::layers::{Layer, LayerId, format_value};
use super::legend;
use super::render::{
    DrawUniform, MASK_CHECKERBOARD, MASK_CURTAIN, MASK_NONE, PaneCallback, PaneDraw, Precision,
};
use super::session::Session;
use super::studies::Side;
use super::vois::{self, Tool, ToolOptions};
use crate::volume::intensity::Window;
use crate::volume::plane::{Orientation, PlaneMapping};

/// Which pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaneKind {
    Study(Side),
    /// The fusion pane: the reference study with the overlays.
    Fusion,
}

impl PaneKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Study(Side::A) => "A",
            Self::Study(Side::B) => "B",
            Self::Fusion => "fusion",
        }
    }

    fn key(self) -> u64 {
        match self {
            Self::Study(Side::A) => 1,
            Self::Study(Side::B) => 2,
            Self::Fusion => 3,
        }
    }
}

/// How A and B are compared in the fusion pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Off,
    Checkerboard,
    Curtain,
}

/// Panes side by side, one large, or the fusion in three planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    SideBySide,
    Single(PaneKind),
    /// Multi-planar: the fusion pane (study A alone when there is no B) axial, coronal
    /// and sagittal side by side, all through the crosshair.
    Planes,
    /// The fusion pane beside a maximum-intensity projection of the PET/SPECT.
    WithMip,
}

/// The id of the pane showing `kind` in `orientation` (interaction and GPU draws).
fn pane_key(kind: PaneKind, orientation: Orientation) -> u64 {
    let plane = Orientation::ALL
        .iter()
        .position(|o| *o == orientation)
        .unwrap_or(0) as u64;
    kind.key() * 4 + plane
}

/// View settings shared by all panes.
#[derive(Clone, Debug)]
pub struct ViewSettings {
    pub orientation: Orientation,
    pub layout: Layout,
    pub zoom: f32,
    /// Pan in points.
    pub pan: Vec2,
    pub compare: Compare,
    /// Curtain position (0..1 across the image) or checkerboard tiles per side.
    pub curtain: f32,
    pub checker_tiles: f32,
    /// The layer the fusion pane's right-drag (window/level) acts on.
    pub selected: LayerId,
    /// What the primary button does.
    pub tool: Tool,
    /// The grow and box tools' settings.
    pub tool_options: ToolOptions,
    /// The MIP pane's viewing angle about the vertical axis (0: from the front).
    pub mip_angle: f32,
    /// Whether the panes show their colour scales.
    pub show_legend: bool,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            orientation: Orientation::Axial,
            layout: Layout::SideBySide,
            zoom: 1.0,
            pan: Vec2::ZERO,
            compare: Compare::Off,
            curtain: 0.5,
            checker_tiles: 8.0,
            selected: LayerId::Fused,
            tool: Tool::Navigate,
            tool_options: ToolOptions::default(),
            mip_angle: 0.0,
            show_legend: true,
        }
    }
}

/// Where the image sits in `pane`: fitted with its physical aspect, zoomed and panned.
pub fn image_rect(pane: Rect, size_mm: [f64; 2], zoom: f32, pan: Vec2) -> Rect {
    let size = Vec2::new(size_mm[0] as f32, size_mm[1] as f32).max(Vec2::splat(1e-3));
    let fit = (pane.width() / size.x).min(pane.height() / size.y) * zoom;
    Rect::from_center_size(pane.center() + pan, size * fit)
}

/// The draws of one pane at the current slice, bottom first.
pub fn draws(
    session: &Session,
    kind: PaneKind,
    settings: &ViewSettings,
    image_in_pane: [f32; 4],
    srgb: bool,
) -> Vec<PaneDraw> {
    let slice = session.slice(settings.orientation);
    draws_at(session, kind, settings, slice, image_in_pane, srgb)
}

/// The draws of one pane at `slice` of the current orientation, bottom first.
pub fn draws_at(
    session: &Session,
    kind: PaneKind,
    settings: &ViewSettings,
    slice: usize,
    image_in_pane: [f32; 4],
    srgb: bool,
) -> Vec<PaneDraw> {
    let dims = session.dims();
    let orientation = settings.orientation;
    let mapping = orientation.mapping(dims, slice);
    // The study lending a layer its chroma, when it has one and is loaded.
    let chroma_source = |layer: &Layer| {
        layer
            .style
            .chroma_from
            .and_then(|side| session.layer(LayerId::Study(side)))
    };
    let uniform = |layer: &Layer, opacity: f32, mode: [f32; 4]| DrawUniform {
        origin: extend(mapping.origin),
        du: extend(mapping.du),
        dv: extend(mapping.dv),
        rect: image_in_pane,
        window: window_uniform(layer, opacity),
        mode,
        output: [if srgb { 1.0 } else { 0.0 }, 0.0, 0.0, 0.0],
        chroma: chroma_source(layer).map_or([0.0; 4], |source| {
            let [low, width, _, row] = window_uniform(source, 0.0);
            [1.0, low, width, row]
        }),
        threshold: layer
            .style
            .threshold
            .map_or([0.0; 4], |low| [1.0, low, 0.0, 0.0]),
    };
    let base = |layer: Option<&Layer>, hidden: bool| {
        layer.map(|layer| PaneDraw {
            layer_key: layer.id.key(),
            uniform: uniform(layer, 1.0, [MASK_NONE, 0.0, 1.0, hidden as u8 as f32]),
            blend: false,
            precision: Precision::of(layer.id),
            chroma_key: chroma_source(layer).map(|l| l.id.key()),
        })
    };
    let over = |layer: &Layer, opacity: f32, mask: [f32; 2]| PaneDraw {
        layer_key: layer.id.key(),
        uniform: uniform(layer, opacity, [mask[0], mask[1], 0.0, 0.0]),
        blend: true,
        precision: Precision::of(layer.id),
        chroma_key: chroma_source(layer).map(|l| l.id.key()),
    };
    match kind {
        PaneKind::Study(side) => base(session.layer(LayerId::Study(side)), false)
            .into_iter()
            .collect(),
        PaneKind::Fusion => {
            let reference = session.layer(LayerId::Study(session.pair.reference));
            let mut out = Vec::new();
            let other = session
                .layer(LayerId::Study(session.pair.reference.other()))
                .filter(|l| l.style.visible);
            // A PET or SPECT overlay draws above the fused image (its colours on the fused
            // grey); an anatomical one beneath it.
            let functional = other.filter(|l| l.volume.modality.is_functional());
            let compare_b = session.layer(LayerId::Study(Side::B));
            match (settings.compare, compare_b) {
                (Compare::Off, _) | (_, None) => {
                    let hidden = reference.is_none_or(|l| !l.style.visible);
                    out.extend(base(reference, hidden));
                    if let Some(layer) = other.filter(|_| functional.is_none()) {
                        out.push(over(layer, layer.style.opacity, [MASK_NONE, 0.0]));
                    }
                }
                (compare, Some(b)) => {
                    out.extend(base(session.layer(LayerId::Study(Side::A)), false));
                    let mask = if compare == Compare::Checkerboard {
                        [MASK_CHECKERBOARD, settings.checker_tiles]
                    } else {
                        [MASK_CURTAIN, settings.curtain]
                    };
                    out.push(over(b, 1.0, mask));
                }
            }
            let outputs = session
                .layers
                .iter()
                .filter(|l| !matches!(l.id, LayerId::Study(_)) && l.style.visible);
            let (fused, maps): (Vec<&Layer>, Vec<&Layer>) =
                outputs.partition(|l| l.id == LayerId::Fused);
            for layer in fused {
                out.push(over(layer, layer.style.opacity, [MASK_NONE, 0.0]));
            }
            if settings.compare == Compare::Off
                && let Some(layer) = functional
            {
                out.push(over(layer, layer.style.opacity, [MASK_NONE, 0.0]));
            }
            for layer in maps {
                out.push(over(layer, layer.style.opacity, [MASK_NONE, 0.0]));
            }
            out
        }
    }
}

/// A layer's window for the shader: low end, width, `opacity`, colour map row.
fn window_uniform(layer: &Layer, opacity: f32) -> [f32; 4] {
    let window = layer.style.window;
    [
        window.center - window.width / 2.0,
        window.width.max(1e-6),
        opacity,
        layer.style.colormap.row() as f32,
    ]
}

fn extend(v: [f32; 3]) -> [f32; 4] {
    [v[0], v[1], v[2], 0.0]
}

/// The layer a pane's right-drag (window/level) acts on.
pub fn main_layer(kind: PaneKind, settings: &ViewSettings) -> LayerId {
    match kind {
        PaneKind::Study(side) => LayerId::Study(side),
        PaneKind::Fusion => settings.selected,
    }
}

/// What a pane asks of the app after its frame.
#[derive(Default)]
pub struct PaneOutput {
    pub scroll: i64,
}

/// Draws pane `kind` in `rect` and handles its mouse input.
pub fn show(
    ui: &mut egui::Ui,
    rect: Rect,
    kind: PaneKind,
    session: &mut Session,
    settings: &mut ViewSettings,
    gpu: Option<bool>,
) -> PaneOutput {
    let id = ui
        .scope_id()
        .with(("pane", pane_key(kind, settings.orientation)));
    let response = ui.interact(rect, id, Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    let frame = PaneFrame::new(rect, session, settings);

    let output = pointer_input(ui, &response, &frame, session, settings);
    let target = main_layer(kind, settings);
    if response.dragged_by(egui::PointerButton::Secondary)
        && let Some(layer) = session.layer_mut(target)
    {
        window_drag(&mut layer.style.window, response.drag_delta());
    }

    // One draw list a frame: the renderer draws it, the legend describes it.
    let drawn = draws(
        session,
        kind,
        settings,
        [0.0, 0.0, 1.0, 1.0],
        gpu.unwrap_or(false),
    );
    let scales = legend::scales(session, &drawn);
    paint_image(&painter, &frame, kind, drawn, gpu.is_some());
    paint_crosshair(&painter, &frame, session.cursor);
    annotate(
        &painter,
        [rect, frame.image],
        (kind, frame.slice),
        session,
        settings,
        &scales,
    );
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::Image,
            true,
            legend::describe(kind.name(), &scales),
        )
    });
    if let Some(voxel) = session.hover {
        painter.text(
            rect.left_bottom() + Vec2::new(6.0, -4.0),
            egui::Align2::LEFT_BOTTOM,
            readout(session, voxel),
            egui::FontId::proportional(12.0),
            Color32::from_gray(230),
        );
    }
    output
}

/// The values under the pointer, one line a layer with its unit: both studies, the fused
/// image, and every map that is shown.
fn readout(session: &Session, voxel: [usize; 3]) -> String {
    session
        .layers
        .iter()
        .filter(|l| matches!(l.id, LayerId::Study(_) | LayerId::Fused) || l.style.visible)
        .map(|l| {
            format!(
                "{} {}",
                l.id.short_name(),
                format_value(l.value(voxel), &l.volume.units)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a pane's image lies this frame: the pane, the image's rectangle in it (zoomed and
/// panned), the plane and slice shown, and the mapping from image to voxel coordinates.
struct PaneFrame {
    rect: Rect,
    image: Rect,
    orientation: Orientation,
    slice: usize,
    dims: [usize; 3],
    mapping: PlaneMapping,
}

impl PaneFrame {
    fn new(rect: Rect, session: &Session, settings: &ViewSettings) -> Self {
        let orientation = settings.orientation;
        let dims = session.dims();
        let size_mm = orientation.size_mm(&session.pair.a.geometry);
        let slice = session.slice(orientation);
        Self {
            rect,
            image: image_rect(rect, size_mm, settings.zoom, settings.pan),
            orientation,
            slice,
            dims,
            mapping: orientation.mapping(dims, slice),
        }
    }

    /// A screen point in the image's unit coordinates (0..1 across the image).
    fn uv(&self, p: Pos2) -> Pos2 {
        ((p - self.image.min) / self.image.size()).to_pos2()
    }
}

/// The wheel, zoom and the primary and middle buttons over the pane: hover voxel, slice
/// scrolling (returned), zoom, pan, the crosshair, and the VOI and ruler tools.
fn pointer_input(
    ui: &egui::Ui,
    response: &egui::Response,
    frame: &PaneFrame,
    session: &mut Session,
    settings: &mut ViewSettings,
) -> PaneOutput {
    let mut output = PaneOutput::default();
    let (orientation, mapping) = (frame.orientation, &frame.mapping);
    if let Some(pointer) = response.hover_pos() {
        let uv = frame.uv(pointer);
        session.hover = mapping.voxel_at(frame.dims, uv.x, uv.y);
        let (wheel, zoom, shift) = wheel_input(ui);
        if zoom != 1.0 {
            settings.zoom = (settings.zoom * zoom).clamp(0.2, 20.0);
        } else {
            output.scroll = wheel;
        }
        let primary = response.dragged_by(egui::PointerButton::Primary)
            || response.clicked_by(egui::PointerButton::Primary);
        if primary && shift {
            settings.pan += response.drag_delta();
        } else if settings.tool != Tool::Navigate
            && (primary || response.drag_stopped_by(egui::PointerButton::Primary))
        {
            let at = |p| {
                let uv = frame.uv(p);
                mapping.point_at(uv.x, uv.y)
            };
            let pressed_at = ui.input(|i| i.pointer.press_origin()).map(at);
            let point = Some(at(pointer));
            let axis = orientation.slice_axis();
            if let Some(message) = vois::pointer(
                response,
                (settings.tool, settings.tool_options),
                session,
                (point, pressed_at),
                axis,
            ) {
                session.voi_message = Some(message);
            }
        } else if primary {
            let [a, b] = orientation.image_axes();
            let c = mapping.point_at(uv.x, uv.y);
            if (0.0..1.0).contains(&uv.x) && (0.0..1.0).contains(&uv.y) {
                session.cursor[a] = c[a].floor() + 0.5;
                session.cursor[b] = c[b].floor() + 0.5;
            }
        }
    }
    if response.drag_stopped_by(egui::PointerButton::Primary)
        && settings.tool != Tool::Navigate
        && response.hover_pos().is_none()
        && let Some(message) = vois::pointer(
            response,
            (settings.tool, settings.tool_options),
            session,
            (None, None),
            orientation.slice_axis(),
        )
    {
        session.voi_message = Some(message);
    }
    if response.dragged_by(egui::PointerButton::Middle) {
        settings.pan += response.drag_delta();
    }
    output
}

/// This frame's wheel notches (one slice per wheel event: smooth scrolling would spread a
/// notch over frames; Ctrl + wheel zooms instead, which egui turns into a zoom delta), the
/// zoom factor and whether Shift is held.
fn wheel_input(ui: &egui::Ui) -> (i64, f32, bool) {
    ui.input(|i| {
        let wheel: i64 = i
            .events
            .iter()
            .filter_map(|e| match e {
                egui::Event::MouseWheel {
                    delta, modifiers, ..
                } if !modifiers.command && !modifiers.ctrl && delta.y != 0.0 => {
                    Some(delta.y.signum() as i64)
                }
                _ => None,
            })
            .sum();
        (wheel, i.zoom_delta(), i.modifiers.shift)
    })
}

/// A right drag by `delta` points on a window: right widens it, up raises its centre.
fn window_drag(window: &mut Window, delta: Vec2) {
    let range = window.width.max(1e-3);
    window.width = (window.width + delta.x * range / 200.0).max(range * 1e-3);
    window.center -= delta.y * range / 200.0;
}

/// The pane's black background and `draws` (made for the whole pane; placed here on the
/// visible part of the image), drawn by the GPU renderer when there is one (`gpu`), else the
/// pane says there is none.
fn paint_image(
    painter: &egui::Painter,
    frame: &PaneFrame,
    kind: PaneKind,
    mut draws: Vec<PaneDraw>,
    gpu: bool,
) {
    let (rect, image) = (frame.rect, frame.image);
    painter.rect_filled(rect, 0.0, Color32::BLACK);
    if !gpu {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "no GPU renderer: images cannot be drawn",
            egui::FontId::proportional(14.0),
            Color32::LIGHT_RED,
        );
        return;
    }
    // Only the visible part of the image is drawn (a software rasterizer pays for every
    // fragment); `placement` is the whole image relative to that part.
    let drawn = image.intersect(rect);
    if drawn.is_positive() {
        let local = |p: Pos2| ((p - drawn.min) / drawn.size()).to_pos2();
        let (min, max) = (local(image.min), local(image.max));
        let placement = [min.x, min.y, max.x - min.x, max.y - min.y];
        for draw in &mut draws {
            draw.uniform.rect = placement;
        }
        let callback = PaneCallback {
            pane: pane_key(kind, frame.orientation),
            draws,
        };
        painter.add(egui_wgpu::Callback::new_paint_callback(drawn, callback));
    }
}

/// The linked crosshair through `cursor` (continuous voxel coordinates), across the pane.
fn paint_crosshair(painter: &egui::Painter, frame: &PaneFrame, cursor: [f32; 3]) {
    let (rect, image) = (frame.rect, frame.image);
    let [u, v] = frame.orientation.image_position(frame.dims, cursor);
    let at = image.min + Vec2::new(u, v) * image.size();
    let stroke = Stroke::new(1.0, Color32::from_rgba_unmultiplied(255, 220, 0, 150));
    painter.line_segment(
        [Pos2::new(at.x, rect.top()), Pos2::new(at.x, rect.bottom())],
        stroke,
    );
    painter.line_segment(
        [Pos2::new(rect.left(), at.y), Pos2::new(rect.right(), at.y)],
        stroke,
    );
}

/// What a pane paints over its image, on screen and in an exported picture: the VOIs'
/// contours, the title, the orientation letters and (when shown) `scales`, the colour scales
/// of what it draws (`legend::scales` of its draw list), for `slice` of the settings' plane;
/// `[pane, image]` are the pane's and the image's rectangles.
pub fn annotate(
    painter: &egui::Painter,
    [pane, image]: [Rect; 2],
    (kind, slice): (PaneKind, usize),
    session: &Session,
    settings: &ViewSettings,
    scales: &[legend::Scale],
) {
    let orientation = settings.orientation;
    vois::paint(
        painter,
        image,
        (orientation, slice),
        session,
        settings.tool_options.box_slices,
    );
    paint_labels(painter, pane, (orientation, slice), kind, session);
    if settings.show_legend {
        legend::paint(painter, pane, scales);
    }
}

/// The pane's title (study, modality, series; plane and slice) and the patient-direction
/// letters at the four edges of `rect`.
fn paint_labels(
    painter: &egui::Painter,
    rect: Rect,
    (orientation, slice): (Orientation, usize),
    kind: PaneKind,
    session: &Session,
) {
    let dims = session.dims();
    let font = egui::FontId::proportional(12.0);
    let text = Color32::from_gray(230);
    let title = match kind {
        PaneKind::Study(side) => session
            .pair
            .study(side)
            .map(|v| {
                let description = &v.identity.series_description;
                format!("{} · {} · {}", kind.name(), v.modality, description)
            })
            .unwrap_or_default(),
        PaneKind::Fusion => "fusion".to_string(),
    };
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        egui::Align2::LEFT_TOP,
        format!(
            "{title}\n{} {}/{}",
            orientation.name(),
            slice + 1,
            orientation.slice_count(dims)
        ),
        font.clone(),
        text,
    );
    let [left, right, top, bottom] = orientation.edge_letters();
    let mid = rect.center();
    for (label, pos, align) in [
        (
            left,
            Pos2::new(rect.left() + 4.0, mid.y),
            egui::Align2::LEFT_CENTER,
        ),
        (
            right,
            Pos2::new(rect.right() - 26.0, mid.y),
            egui::Align2::RIGHT_CENTER,
        ),
        (
            top,
            Pos2::new(mid.x, rect.top() + 4.0),
            egui::Align2::CENTER_TOP,
        ),
        (
            bottom,
            Pos2::new(mid.x, rect.bottom() - 4.0),
            egui::Align2::CENTER_BOTTOM,
        ),
    ] {
        painter.text(
            pos,
            align,
            label,
            font.clone(),
            Color32::from_rgb(255, 200, 80),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_keep_their_physical_aspect() {
        let pane = Rect::from_min_size(Pos2::ZERO, Vec2::new(400.0, 200.0));
        let image = image_rect(pane, [100.0, 100.0], 1.0, Vec2::ZERO);
        assert_eq!(
            image,
            Rect::from_min_max(Pos2::new(100.0, 0.0), Pos2::new(300.0, 200.0))
        );
        let zoomed = image_rect(pane, [100.0, 50.0], 2.0, Vec2::new(10.0, 0.0));
        assert_eq!(zoomed.size(), Vec2::new(800.0, 400.0));
        assert_eq!(zoomed.center(), Pos2::new(210.0, 100.0));
    }
}
