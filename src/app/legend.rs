//! A pane's legend: one colour scale for every layer the pane draws, top layer first, made
//! from the same draw list the renderer gets so that it cannot describe something else. Each
//! scale has a title, its colour map, both ends labelled (values in the layer's units; the
//! network's maps in words: which study is trusted, which expert is chosen) and the lower
//! threshold below which the layer is not drawn. A fused image wearing a study's colours gets
//! that study's scale right after its own. The text is also the pane's accessible label.

use egui::{Color32, Pos2, Rect, Stroke, Vec2};

use super::layers::{Layer, LayerId, format_value};
use super::render::PaneDraw;
use super::session::Session;
use super::studies::Side;
use crate::volume::Units;
use crate::volume::colormap::ColorMap;
use crate::volume::intensity::Window;

/// One colour scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    /// What the scale is of, e.g. "B · PT (SUVbw)", "fused", "mixer α, scale 0".
    pub title: String,
    pub colormap: ColorMap,
    /// The window the colours span.
    pub window: Window,
    /// The labels at the low and high ends.
    pub low: String,
    pub high: String,
    /// The value below which nothing is drawn, and its label.
    pub threshold: Option<(f32, String)>,
    /// Whether the ends are named in words (the network's maps): drawn on two lines.
    pub worded: bool,
}

impl Scale {
    /// One line of text: title, ends and threshold.
    pub fn describe(&self) -> String {
        let threshold = self
            .threshold
            .as_ref()
            .map(|(_, label)| format!(", {label}"))
            .unwrap_or_default();
        format!(
            "{}: {} ({}) to {}{threshold}",
            self.title,
            self.low,
            self.colormap.name(),
            self.high
        )
    }

    /// Where `value` falls along the scale, 0 (low end) to 1 (high end).
    fn position(&self, value: f32) -> f32 {
        let low = self.window.center - self.window.width / 2.0;
        ((value - low) / self.window.width.max(1e-6)).clamp(0.0, 1.0)
    }
}

/// The scales of what `draws` (a pane's draws, bottom first) show, top layer first.
pub fn scales(session: &Session, draws: &[PaneDraw]) -> Vec<Scale> {
    let mut out = Vec::new();
    for draw in draws.iter().rev() {
        let Some(layer) = session.layers.iter().find(|l| l.id.key() == draw.layer_key) else {
            continue;
        };
        let (base, hidden, opacity) = (
            draw.uniform.mode[2] > 0.5,
            draw.uniform.mode[3] > 0.5,
            draw.uniform.window[2],
        );
        if hidden || (!base && opacity <= 0.0) {
            continue;
        }
        out.push(scale_of(session, layer));
        if let Some(source) = draw
            .chroma_key
            .and_then(|key| session.layers.iter().find(|l| l.id.key() == key))
        {
            let mut colours = scale_of(session, source);
            colours.title = format!("{} colours: {}", layer.id.name(), colours.title);
            out.push(colours);
        }
    }
    out
}

/// The pane's legend as one line a scale, for its accessible label.
pub fn describe(pane: &str, scales: &[Scale]) -> String {
    let mut text = format!("{pane} pane; colour scales, top layer first:");
    for scale in scales {
        text.push('\n');
        text.push_str(&scale.describe());
    }
    text
}

/// The name of a study for a legend: "A · MR".
fn study_name(session: &Session, side: Side) -> String {
    let id = LayerId::Study(side);
    session
        .layer(id)
        .map(|l| format!("{} · {}", id.name(), l.volume.modality))
        .unwrap_or_else(|| id.name())
}

/// The scale of one layer.
fn scale_of(session: &Session, layer: &Layer) -> Scale {
    let window = layer.style.window;
    let (low_value, high_value) = (
        window.center - window.width / 2.0,
        window.center + window.width / 2.0,
    );
    let number = |v: f32| format!("{v:.2}");
    let (title, low, high) = match layer.id {
        LayerId::Study(side) => (
            format!("{} ({})", study_name(session, side), layer.volume.units),
            end_value(low_value, &layer.volume.units),
            end_value(high_value, &layer.volume.units),
        ),
        LayerId::Fused => (
            "fused (0 dark to 1 bright)".to_string(),
            number(low_value),
            number(high_value),
        ),
        LayerId::Reliability(side, s) => {
            let trusted = |side| format!("{} trusted", study_name(session, side));
            (
                format!("reliability of {}, scale {s}", study_name(session, side)),
                format!("{} {}", number(low_value), trusted(side.other())),
                format!("{} {}", number(high_value), trusted(side)),
            )
        }
        LayerId::Alpha(s) => (
            format!("mixer α, scale {s}"),
            format!("{} spatial expert", number(low_value)),
            format!("{} wavelet expert", number(high_value)),
        ),
    };
    let threshold = layer.style.threshold.map(|t| {
        (
            t,
            format!("not drawn below {}", format_value(t, &layer.volume.units)),
        )
    });
    Scale {
        title,
        colormap: layer.style.colormap,
        window,
        low,
        high,
        threshold,
        worded: matches!(layer.id, LayerId::Reliability(..) | LayerId::Alpha(_)),
    }
}

/// A study's value at an end of its bar, its unit being in the title: HU and counts whole,
/// SUV to two decimals, MR signal to one.
fn end_value(value: f32, units: &Units) -> String {
    match units {
        Units::Hounsfield | Units::BqPerMl | Units::Counts => format!("{value:.0}"),
        Units::SuvBw => format!("{value:.2}"),
        Units::Signal => format!("{value:.1}"),
        Units::Other(_) => format!("{value:.3}"),
    }
}

/// Height of one scale in the legend: title, bar, end labels (one line, or two when the ends
/// are named in words, low then high).
fn row_height(scale: &Scale) -> f32 {
    if scale.worded { 49.0 } else { 38.0 }
}

/// Where the legend of `scales` sits in `pane` (top right, below the title), and each scale's
/// row.
fn rows(pane: Rect, scales: &[Scale]) -> (Rect, Vec<Rect>) {
    let width = (pane.width() * 0.5).clamp(90.0, 190.0);
    // Below the pane's two-line title, which may run under it in a narrow pane.
    let mut top = pane.top() + 36.0;
    let left = pane.right() - width - 6.0;
    let rows: Vec<Rect> = scales
        .iter()
        .map(|scale| {
            let row =
                Rect::from_min_size(Pos2::new(left, top), Vec2::new(width, row_height(scale)));
            top = row.bottom();
            row
        })
        .collect();
    let block = Rect::from_min_max(
        Pos2::new(left - 2.0, pane.top() + 34.0),
        Pos2::new(left + width + 2.0, top + 2.0),
    );
    (block, rows)
}

/// The bar of a scale whose row is `row`.
fn bar_in(row: Rect) -> Rect {
    Rect::from_min_size(
        row.left_top() + Vec2::new(0.0, 14.0),
        Vec2::new(row.width(), 9.0),
    )
}

/// Where each scale's bar is drawn in `pane`, top first (the low end at the left).
pub fn bar_rects(pane: Rect, scales: &[Scale]) -> Vec<Rect> {
    rows(pane, scales).1.into_iter().map(bar_in).collect()
}

/// Paints `scales` in a column at the top right of `pane`, over a dark backing.
pub fn paint(painter: &egui::Painter, pane: Rect, scales: &[Scale]) {
    if scales.is_empty() {
        return;
    }
    let (block, rows) = rows(pane, scales);
    painter.rect_filled(block, 3.0, Color32::from_black_alpha(170));
    for (row, scale) in rows.into_iter().zip(scales) {
        paint_scale(painter, row, scale);
    }
}

/// One scale in `rect`: the title, the bar (dimmed below the threshold, with a tick there)
/// and the end labels beneath it.
fn paint_scale(painter: &egui::Painter, rect: Rect, scale: &Scale) {
    let text = Color32::from_gray(230);
    let small = egui::FontId::proportional(10.0);
    painter.text(
        rect.left_top(),
        egui::Align2::LEFT_TOP,
        &scale.title,
        egui::FontId::proportional(11.0),
        text,
    );
    let bar = bar_in(rect);
    let cut = scale
        .threshold
        .as_ref()
        .map_or(0.0, |(value, _)| scale.position(*value));
    painter.add(bar_mesh(bar, scale.colormap, cut));
    painter.rect_stroke(
        bar,
        0.0,
        Stroke::new(1.0, Color32::GRAY),
        egui::StrokeKind::Outside,
    );
    if cut > 0.0 {
        let x = bar.left() + cut * bar.width();
        painter.line_segment(
            [
                Pos2::new(x, bar.top() - 2.0),
                Pos2::new(x, bar.bottom() + 2.0),
            ],
            Stroke::new(1.5, Color32::WHITE),
        );
    }
    let second_line = if scale.worded { 11.0 } else { 0.0 };
    for (label, pos, align) in [
        (&scale.low, bar.left_bottom(), egui::Align2::LEFT_TOP),
        (
            &scale.high,
            bar.right_bottom() + Vec2::new(0.0, second_line),
            egui::Align2::RIGHT_TOP,
        ),
    ] {
        painter.text(pos + Vec2::new(0.0, 2.0), align, label, small.clone(), text);
    }
}

/// The bar's colours, low on the left: the colour map's own colours (an egui mesh: one
/// quad per table entry, so a point of the bar shows exactly the entry the image gives the
/// value there), dimmed to a
/// third left of `cut` (0..1), where the layer is not drawn.
fn bar_mesh(bar: Rect, colormap: ColorMap, cut: f32) -> egui::Mesh {
    let mut mesh = egui::Mesh::default();
    let table = colormap.table();
    let last = (table.len() - 1) as f32;
    for (i, entry) in table.iter().enumerate() {
        // Entry i is what values windowed to (i ± ½) / last get (the shader rounds).
        let t0 = ((i as f32 - 0.5) / last).max(0.0);
        let t1 = ((i as f32 + 0.5) / last).min(1.0);
        let dim = if (t0 + t1) / 2.0 < cut { 3 } else { 1 };
        let [r, g, b] = [entry[0], entry[1], entry[2]].map(|c| c / dim);
        let x = |t: f32| bar.left() + t * bar.width();
        let quad = Rect::from_min_max(Pos2::new(x(t0), bar.top()), Pos2::new(x(t1), bar.bottom()));
        mesh.add_colored_rect(quad, Color32::from_rgb(r, g, b));
    }
    mesh
}
