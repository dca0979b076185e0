//! Burning what a pane paints over its image (VOI contours, title, orientation letters,
//! colour scales) into an exported picture. The pane's own painting code runs in a headless
//! egui pass the size of the picture; egui tessellates the shapes into triangles, and they
//! are filled here on the CPU: premultiplied alpha, blended in sRGB-encoded values as egui's
//! renderer does on a gamma framebuffer, so the picture carries the same text and strokes as
//! the screen without a GPU.

use std::collections::HashMap;
use std::sync::Arc;

use egui::epaint::{ClippedPrimitive, Primitive, Vertex};
use egui::{Color32, ColorImage, Pos2, Rect, TextureId, Vec2};

/// The textures the triangles sample (egui's font atlas), as of the last pass.
pub type Textures = Arc<HashMap<TextureId, ColorImage>>;

/// A headless egui context that paints on pictures of any size.
pub struct HeadlessPainter {
    ctx: egui::Context,
    textures: HashMap<TextureId, ColorImage>,
}

impl Default for HeadlessPainter {
    fn default() -> Self {
        Self::new()
    }
}

impl HeadlessPainter {
    pub fn new() -> Self {
        Self {
            ctx: egui::Context::default(),
            textures: HashMap::new(),
        }
    }

    /// Runs `paint` on a canvas of `size` pixels (one pixel a point) and returns the
    /// triangles it made.
    pub fn paint(
        &mut self,
        [width, height]: [usize; 2],
        mut paint: impl FnMut(&egui::Painter),
    ) -> Vec<ClippedPrimitive> {
        let canvas = Rect::from_min_size(Pos2::ZERO, Vec2::new(width as f32, height as f32));
        let input = egui::RawInput {
            screen_rect: Some(canvas),
            ..Default::default()
        };
        let mut output = self.ctx.run_pass(input, |ctx| {
            let painter = ctx.layer_painter(egui::LayerId::background());
            paint(&painter.with_clip_rect(canvas));
        });
        for (id, deltas) in std::mem::take(&mut output.textures_delta.set) {
            for delta in deltas {
                let egui::ImageData::Color(patch) = delta.image;
                match (delta.pos, self.textures.get_mut(&id)) {
                    (Some([x, y]), Some(texture)) => copy_patch(texture, &patch, [x, y]),
                    _ => {
                        self.textures.insert(id, patch.as_ref().clone());
                    }
                }
            }
        }
        let shapes = std::mem::take(&mut output.shapes);
        self.ctx.tessellate(shapes, output.pixels_per_point)
    }

    /// The textures as they are now (call after the last `paint`).
    pub fn textures(&self) -> Textures {
        Arc::new(self.textures.clone())
    }
}

/// Writes `patch` into `texture` at `[x, y]` (parts outside are dropped).
fn copy_patch(texture: &mut ColorImage, patch: &ColorImage, [x, y]: [usize; 2]) {
    let [tw, th] = texture.size;
    let [pw, ph] = patch.size;
    for row in 0..ph.min(th.saturating_sub(y)) {
        let width = pw.min(tw.saturating_sub(x));
        let to = (y + row) * tw + x;
        texture.pixels[to..to + width].copy_from_slice(&patch.pixels[row * pw..row * pw + width]);
    }
}

/// Fills `primitives` over `rgb` (8-bit RGB, `size` pixels, row by row).
pub fn rasterize(
    rgb: &mut [u8],
    size: [usize; 2],
    primitives: &[ClippedPrimitive],
    textures: &HashMap<TextureId, ColorImage>,
) {
    let canvas = Rect::from_min_size(Pos2::ZERO, Vec2::new(size[0] as f32, size[1] as f32));
    for clipped in primitives {
        let Primitive::Mesh(mesh) = &clipped.primitive else {
            continue;
        };
        let Some(texture) = textures.get(&mesh.texture_id) else {
            continue;
        };
        let clip = clipped.clip_rect.intersect(canvas);
        for triangle in mesh.indices.chunks_exact(3) {
            let vertex = |i: u32| mesh.vertices.get(i as usize);
            if let (Some(a), Some(b), Some(c)) = (
                vertex(triangle[0]),
                vertex(triangle[1]),
                vertex(triangle[2]),
            ) {
                fill_triangle(rgb, size[0], clip, [a, b, c], texture);
            }
        }
    }
}

/// Twice the signed area of `(a, b, p)`: which side of the edge a→b the point `p` lies on.
fn edge(a: Pos2, b: Pos2, p: Pos2) -> f32 {
    (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
}

/// Whether a pixel centre exactly on edge a→b belongs to the triangle: of two triangles
/// sharing the edge (which see it in opposite directions) exactly one takes it.
fn owns_edge(a: Pos2, b: Pos2) -> bool {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    dy > 0.0 || (dy == 0.0 && dx < 0.0)
}

/// One triangle: every pixel whose centre it covers (within `clip`) gets the interpolated
/// vertex colour times the texel, blended over what is there.
fn fill_triangle(
    rgb: &mut [u8],
    width: usize,
    clip: Rect,
    [a, b, c]: [&Vertex; 3],
    texture: &ColorImage,
) {
    let (a, b, c) = if edge(a.pos, b.pos, c.pos) < 0.0 {
        (a, c, b)
    } else {
        (a, b, c)
    };
    let area = edge(a.pos, b.pos, c.pos);
    if area <= f32::EPSILON || !clip.is_positive() {
        return;
    }
    let low = a.pos.min(b.pos).min(c.pos).max(clip.min);
    let high = a.pos.max(b.pos).max(c.pos).min(clip.max);
    let (x0, y0) = (
        low.x.floor().max(0.0) as usize,
        low.y.floor().max(0.0) as usize,
    );
    let (x1, y1) = (
        high.x.ceil().max(0.0) as usize,
        high.y.ceil().max(0.0) as usize,
    );
    let edges = [(b, c), (c, a), (a, b)];
    for y in y0..y1 {
        for x in x0..x1 {
            let p = Pos2::new(x as f32 + 0.5, y as f32 + 0.5);
            if !clip.contains(p) {
                continue;
            }
            let weights = edges.map(|(from, to)| edge(from.pos, to.pos, p));
            let inside = weights
                .iter()
                .zip(edges)
                .all(|(w, (from, to))| *w > 0.0 || (*w == 0.0 && owns_edge(from.pos, to.pos)));
            if !inside {
                continue;
            }
            let [wa, wb, wc] = weights.map(|w| w / area);
            let colour = [0, 1, 2, 3].map(|k| {
                let channel = |v: &Vertex| f32::from(v.color.to_array()[k]) / 255.0;
                wa * channel(a) + wb * channel(b) + wc * channel(c)
            });
            let uv = a.uv.to_vec2() * wa + b.uv.to_vec2() * wb + c.uv.to_vec2() * wc;
            let texel = sample(texture, uv);
            let source = [0, 1, 2, 3].map(|k| colour[k] * f32::from(texel[k]) / 255.0);
            let at = (y * width + x) * 3;
            if let Some(pixel) = rgb.get_mut(at..at + 3) {
                for k in 0..3 {
                    let below = f32::from(pixel[k]) / 255.0;
                    let blended = source[k] + below * (1.0 - source[3]);
                    pixel[k] = (blended.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
}

/// The texel nearest to `uv` (0..1 across the texture), premultiplied RGBA.
fn sample(texture: &ColorImage, uv: Vec2) -> [u8; 4] {
    let [w, h] = texture.size;
    if w == 0 || h == 0 {
        return [255; 4];
    }
    let x = ((uv.x * w as f32).floor().max(0.0) as usize).min(w - 1);
    let y = ((uv.y * h as f32).floor().max(0.0) as usize).min(h - 1);
    texture
        .pixels
        .get(y * w + x)
        .copied()
        .unwrap_or(Color32::WHITE)
        .to_array()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_rectangle_and_text_land_where_egui_put_them() {
        let mut painter = HeadlessPainter::new();
        let size = [64, 32];
        let primitives = painter.paint(size, |p| {
            p.rect_filled(
                Rect::from_min_max(Pos2::new(4.0, 4.0), Pos2::new(20.0, 12.0)),
                0.0,
                Color32::from_rgb(200, 40, 10),
            );
            p.text(
                Pos2::new(30.0, 16.0),
                egui::Align2::LEFT_TOP,
                "R",
                egui::FontId::proportional(12.0),
                Color32::WHITE,
            );
        });
        let textures = painter.textures();
        let mut rgb = vec![0u8; size[0] * size[1] * 3];
        rasterize(&mut rgb, size, &primitives, &textures);
        let pixel = |x: usize, y: usize| &rgb[(y * size[0] + x) * 3..(y * size[0] + x) * 3 + 3];
        assert_eq!(pixel(10, 8), [200, 40, 10]);
        assert_eq!(pixel(2, 2), [0, 0, 0]);
        // The rectangle's two triangles share a diagonal: no pixel is blended twice.
        assert!((4..20).all(|x| (4..12).all(|y| pixel(x, y) == [200, 40, 10])));
        // The letter puts light pixels in its box and nowhere else.
        let lit = |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
            xs.flat_map(|x| ys.clone().map(move |y| (x, y)))
                .filter(|&(x, y)| pixel(x, y)[0] > 128)
                .count()
        };
        assert!(lit(30..40, 16..30) > 5);
        assert_eq!(lit(40..64, 0..32), 0);
    }
}
