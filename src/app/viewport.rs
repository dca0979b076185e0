//! One study's viewport: the current axial slice, windowed and colour-mapped into a texture,
//! with right-drag window/level and the value under the cursor in physical units.

use crate::volume::Volume;
use crate::volume::geometry::{cross, dot, normalize};
use crate::volume::intensity::Window;

/// A study shown in the viewer.
pub struct Viewport {
    volume: Volume,
    pub slice: usize,
    window: Window,
    texture: Option<egui::TextureHandle>,
    /// (slice, window) the texture was made for.
    texture_key: Option<(usize, [u32; 2])>,
}

impl Viewport {
    pub fn new(volume: Volume) -> Self {
        let window = Window::default_for(&volume);
        let slice = volume.geometry.dims[2] / 2;
        Self {
            volume,
            slice,
            window,
            texture: None,
            texture_key: None,
        }
    }

    pub fn slice_count(&self) -> usize {
        self.volume.geometry.dims[2]
    }

    /// Position of slice `k` along this study's slice normal (mm).
    pub fn position_of(&self, k: usize) -> f64 {
        let g = &self.volume.geometry;
        dot(g.index_to_world([0.0, 0.0, k as f64]), self.normal())
    }

    fn normal(&self) -> [f64; 3] {
        let g = &self.volume.geometry;
        normalize(cross(g.direction[0], g.direction[1]))
    }

    /// Shows the slice nearest to `position` (mm along the normal).
    pub fn go_to_position(&mut self, position: f64) {
        let g = &self.volume.geometry;
        let origin = dot(g.origin, self.normal());
        let step = dot(g.direction[2], self.normal()) * g.spacing[2];
        let k = if step.abs() > 1e-9 {
            ((position - origin) / step).round()
        } else {
            0.0
        };
        self.slice = k.clamp(0.0, (self.slice_count() - 1) as f64) as usize;
    }

    fn image(&self) -> egui::ColorImage {
        let [nx, ny, _] = self.volume.geometry.dims;
        let values = self.volume.slice(self.slice);
        let functional = self.volume.modality.is_functional();
        if self.volume.channels == 3 {
            let rgb: Vec<u8> = values.iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
            return egui::ColorImage::from_rgb([nx, ny], &rgb);
        }
        let pixels = values
            .iter()
            .map(|v| {
                let t = self.window.normalise(*v);
                if functional { hot_iron(t) } else { gray(t) }
            })
            .collect();
        egui::ColorImage::new([nx, ny], pixels)
    }

    /// Draws the viewport; returns slice steps asked for by the mouse wheel over it.
    pub fn show(&mut self, ui: &mut egui::Ui) -> Option<i64> {
        let key = (
            self.slice,
            [self.window.center.to_bits(), self.window.width.to_bits()],
        );
        if self.texture_key != Some(key) {
            let image = self.image();
            match &mut self.texture {
                Some(texture) => texture.set(image, egui::TextureOptions::LINEAR),
                None => {
                    self.texture = Some(ui.ctx().load_texture(
                        format!("slice-{}", self.volume.identity.series_instance_uid),
                        image,
                        egui::TextureOptions::LINEAR,
                    ))
                }
            }
            self.texture_key = Some(key);
        }
        let v = &self.volume;
        ui.label(format!(
            "{} · {} · {} · slice {}/{} · W {:.0} L {:.0}",
            v.modality,
            if v.identity.series_description.is_empty() {
                "(no description)"
            } else {
                &v.identity.series_description
            },
            v.units,
            self.slice + 1,
            self.slice_count(),
            self.window.width,
            self.window.center
        ));
        let g = &v.geometry;
        let physical = egui::vec2(
            (g.dims[0] as f64 * g.spacing[0]) as f32,
            (g.dims[1] as f64 * g.spacing[1]) as f32,
        );
        let available = ui.available_size();
        let scale = (available.x / physical.x)
            .min(available.y / physical.y)
            .max(0.01);
        let texture = self.texture.as_ref()?;
        let response = ui.add(
            egui::Image::new((texture.id(), physical * scale)).sense(egui::Sense::click_and_drag()),
        );
        if response.dragged_by(egui::PointerButton::Secondary) {
            let delta = response.drag_delta();
            let range = self.window.width.max(1e-3);
            self.window.width = (self.window.width + delta.x * range / 200.0).max(range * 1e-3);
            self.window.center -= delta.y * range / 200.0;
        }
        if let Some(pointer) = response.hover_pos() {
            let local = (pointer - response.rect.min) / response.rect.size();
            let i = (local.x * g.dims[0] as f32) as usize;
            let j = (local.y * g.dims[1] as f32) as usize;
            if i < g.dims[0] && j < g.dims[1] {
                let value = v.value(i, j, self.slice);
                response.on_hover_text(format!(
                    "({i}, {j}, {}) = {value:.2} {}",
                    self.slice, v.units
                ));
            }
            let wheel = ui.input(|i| i.smooth_scroll_delta.y);
            if wheel.abs() > 0.0 {
                return Some(wheel.signum() as i64);
            }
        }
        None
    }
}

fn gray(t: f32) -> egui::Color32 {
    let v = (t * 255.0).round() as u8;
    egui::Color32::from_rgb(v, v, v)
}

/// The hot-iron colour map (black → red → yellow → white).
fn hot_iron(t: f32) -> egui::Color32 {
    let r = (t * 3.0).clamp(0.0, 1.0);
    let g = (t * 3.0 - 1.0).clamp(0.0, 1.0);
    let b = (t * 3.0 - 2.0).clamp(0.0, 1.0);
    egui::Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}
