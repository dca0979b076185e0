//! The MIP pane: a maximum-intensity projection of the PET or SPECT (else of study A) in
//! inverted gray, as readers scan for foci, turning about the patient's vertical axis
//! (toolbar slider, Left/Right keys, or a horizontal drag in the pane). A click on a hot spot
//! moves the crosshair to the voxel that made it, so the other panes show it.

use egui::{Color32, ColorImage, Rect, Sense, TextureOptions, Vec2};

use super::layers::LayerId;
use super::marks::MipCache;
use super::session::Session;
use crate::volume::mip::{self, Projection};

/// Degrees the view turns per Left/Right key press.
pub const KEY_STEP_DEG: f32 = 10.0;

/// Where the projection sits in `pane` (fitted with its physical aspect).
pub fn image_rect(pane: Rect, projection: &Projection) -> Rect {
    let size = Vec2::new(
        (projection.width as f64 * projection.pixel_mm[0]) as f32,
        (projection.height as f64 * projection.pixel_mm[1]) as f32,
    )
    .max(Vec2::splat(1e-3));
    let fit = (pane.width() / size.x).min(pane.height() / size.y);
    Rect::from_center_size(pane.center(), size * fit)
}

/// Draws the MIP pane at `angle_deg` in `rect` and handles its mouse input; returns the
/// angle after a drag.
pub fn show(ui: &mut egui::Ui, rect: Rect, session: &mut Session, angle_deg: f32) -> f32 {
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::BLACK);
    let layer_id = session.reading_study();
    refresh(ui.ctx(), session, layer_id, angle_deg);
    let Some(cache) = &session.mip else {
        return angle_deg;
    };
    let image = image_rect(rect, &cache.projection);
    painter.image(
        cache.texture.id(),
        image,
        Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        egui::Align2::LEFT_TOP,
        format!("MIP · {} · {angle_deg:.0}°", layer_id.name()),
        egui::FontId::proportional(12.0),
        Color32::from_rgb(200, 40, 40),
    );
    let response = ui.interact(
        rect,
        ui.scope_id().with("mip pane"),
        Sense::click_and_drag(),
    );
    let mut angle = angle_deg;
    // The angle's slider along the pane's foot.
    let foot = Rect::from_min_size(
        rect.left_bottom() + Vec2::new(8.0, -26.0),
        Vec2::new((rect.width() - 16.0).min(320.0), 20.0),
    );
    ui.put(
        foot,
        egui::Slider::new(&mut angle, 0.0..=359.0)
            .suffix("°")
            .text("MIP angle"),
    );
    if response.dragged_by(egui::PointerButton::Primary) {
        angle = normalise(angle + response.drag_delta().x * 0.5);
    }
    if response.clicked_by(egui::PointerButton::Primary)
        && let Some(pointer) = response.interact_pointer_pos()
    {
        let uv = (pointer - image.min) / image.size();
        let projection = &cache.projection;
        if (0.0..1.0).contains(&uv.x) && (0.0..1.0).contains(&uv.y) {
            let column = (uv.x * projection.width as f32) as usize;
            let row = (uv.y * projection.height as f32) as usize;
            if let Some(voxel) = projection.sources[row * projection.width + column] {
                session.cursor = voxel.map(|v| v as f32 + 0.5);
            }
        }
    }
    angle
}

/// Keeps an angle in 0..360.
pub fn normalise(angle: f32) -> f32 {
    angle.rem_euclid(360.0)
}

/// Remakes the projection and its texture when the layer, its data, its window or the
/// angle changed.
fn refresh(ctx: &egui::Context, session: &mut Session, layer_id: LayerId, angle_deg: f32) {
    let Some(layer) = session.layer(layer_id) else {
        return;
    };
    let window = layer.style.window;
    let key = (
        layer_id,
        layer.generation,
        (angle_deg * 10.0).round() as i32,
        [window.center.to_bits(), window.width.to_bits()],
    );
    if session.mip.as_ref().is_some_and(|c| c.key == key) {
        return;
    }
    let projection = mip::project(&layer.volume, f64::from(angle_deg));
    let low = window.center - window.width / 2.0;
    let width = window.width.max(1e-6);
    // Inverted gray: high uptake dark, as PET MIPs are read.
    let pixels = projection
        .values
        .iter()
        .map(|v| {
            if v.is_nan() {
                Color32::WHITE
            } else {
                let t = ((v - low) / width).clamp(0.0, 1.0);
                Color32::from_gray((255.0 * (1.0 - t)).round() as u8)
            }
        })
        .collect();
    let image = ColorImage::new([projection.width, projection.height], pixels);
    let texture = ctx.load_texture("mip", image, TextureOptions::NEAREST);
    session.mip = Some(MipCache {
        key,
        projection,
        texture,
    });
}
