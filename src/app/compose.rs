//! The CPU twin of `shaders/slice.wgsl`: composes a pane's draws into RGB pixels at one
//! pixel per voxel, for PNG export "as displayed" (window/level, colour maps, opacity and
//! compare masks burned in). Same mapping, masks and blending as the shader, so an exported
//! image is what the pane shows, minus zoom, pan and the crosshair.

use std::collections::HashMap;
use std::sync::Arc;

use super::render::{MASK_CHECKERBOARD, MASK_CURTAIN, PaneDraw};
use crate::volume::Volume;
use crate::volume::colormap::{ColorMap, LUT_SIZE};
use crate::volume::colour::with_chroma_of;
use crate::volume::plane::PlaneMapping;

/// Composes `draws` (made with the image filling the pane: placement `[0, 0, 1, 1]`) into
/// `size` RGB pixels; `volumes` are the layers' values by layer key.
pub fn compose(
    draws: &[PaneDraw],
    volumes: &HashMap<u64, Arc<Volume>>,
    size: [usize; 2],
) -> Vec<u8> {
    let tables: Vec<Vec<[u8; 4]>> = ColorMap::ALL.iter().map(|m| m.table()).collect();
    let [w, h] = size;
    let mut out = vec![0f32; w * h * 3];
    for draw in draws {
        let Some(volume) = volumes.get(&draw.layer_key) else {
            continue;
        };
        let u = &draw.uniform;
        let dims = volume.geometry.dims;
        let (base, hidden) = (u.mode[2] > 0.5, u.mode[3] > 0.5);
        let opacity = if base { 1.0 } else { u.window[2] };
        let table = &tables[(u.window[3] as usize).min(tables.len() - 1)];
        // The study lending its chroma, mapped through its own window and colour map (off
        // when it is missing or on another grid, as on the GPU).
        let chroma = draw
            .chroma_key
            .and_then(|key| volumes.get(&key))
            .filter(|c| u.chroma[0] > 0.5 && c.geometry.dims == dims)
            .map(|c| {
                let row = (u.chroma[3] as usize).min(tables.len() - 1);
                (c.as_ref(), &tables[row][..])
            });
        for y in 0..h {
            for x in 0..w {
                let (pu, pv) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
                let pixel = &mut out[(y * w + x) * 3..(y * w + x) * 3 + 3];
                let colour = sample(draw, volume, table, chroma, pu, pv, hidden);
                match colour {
                    Some(rgb) => {
                        for c in 0..3 {
                            pixel[c] = rgb[c] * opacity + pixel[c] * (1.0 - opacity);
                        }
                    }
                    None if base => pixel.fill(0.0),
                    None => {}
                }
            }
        }
    }
    out.iter().map(|v| (v * 255.0).round() as u8).collect()
}

/// The colour one draw gives at pane coordinates `(pu, pv)` (0..1), or `None` where the
/// shader draws nothing (outside the image, masked, not computed yet).
fn sample(
    draw: &PaneDraw,
    volume: &Volume,
    table: &[[u8; 4]],
    chroma: Option<(&Volume, &[[u8; 4]])>,
    pu: f32,
    pv: f32,
    hidden: bool,
) -> Option<[f32; 3]> {
    if hidden {
        return Some([0.0; 3]);
    }
    let u = &draw.uniform;
    let (iu, iv) = ((pu - u.rect[0]) / u.rect[2], (pv - u.rect[1]) / u.rect[3]);
    if !(0.0..1.0).contains(&iu) || !(0.0..1.0).contains(&iv) {
        return None;
    }
    let mask = u.mode[0];
    if mask == MASK_CHECKERBOARD {
        let cell = ((iu * u.mode[1]).floor() as i64) + ((iv * u.mode[1]).floor() as i64);
        if cell & 1 == 0 {
            return None;
        }
    } else if mask == MASK_CURTAIN && iu < u.mode[1] {
        return None;
    }
    let xyz = |v: [f32; 4]| [v[0], v[1], v[2]];
    let plane = PlaneMapping {
        origin: xyz(u.origin),
        du: xyz(u.du),
        dv: xyz(u.dv),
    };
    let voxel = plane.voxel_at(volume.geometry.dims, iu, iv)?;
    let value = draw
        .precision
        .stored(volume.value(voxel[0], voxel[1], voxel[2]));
    if value.is_nan() || (u.threshold[0] > 0.5 && value < u.threshold[1]) {
        return None;
    }
    let rgb = mapped(table, value, u.window[0], u.window[1]);
    let Some((source, source_table)) = chroma else {
        return Some(rgb);
    };
    let source_value = source.value(voxel[0], voxel[1], voxel[2]);
    if source_value.is_nan() {
        return Some(rgb);
    }
    let lent = mapped(source_table, source_value, u.chroma[1], u.chroma[2]);
    Some(with_chroma_of(rgb, lent))
}

/// `value` through a window (low end, width) and a colour table, as RGB 0..1.
fn mapped(table: &[[u8; 4]], value: f32, low: f32, width: f32) -> [f32; 3] {
    let t = ((value - low) / width).clamp(0.0, 1.0);
    let entry = table[((t * (LUT_SIZE - 1) as f32).round() as usize).min(LUT_SIZE - 1)];
    [0, 1, 2].map(|c| f32::from(entry[c]) / 255.0)
}
