//! `dualmine eval --figure`: a grid of example pairs, one row per pair — A, B, the fused
//! image, the reliability map of A at the finest and coarsest scale, and the mixer weight α
//! at the finest and coarsest scale. Maps are drawn with the viewer's rainbow colour map
//! (0 dark blue … 0.5 green … 1 red) and a colour bar under the map columns, with ticks at
//! 0, 0.25, 0.5, 0.75 and 1.

use std::path::Path;

use anyhow::{Result, bail};

use dualmine::export::png::write_png;
use dualmine::fusion::images::FusedImage;
use dualmine::volume::colormap::ColorMap;
use dualmine::volume::{Geometry, Volume};

/// Columns of the figure.
pub const COLUMNS: [&str; 7] = [
    "A",
    "B (MRI)",
    "fused",
    "reliability of A, finest scale",
    "reliability of A, coarsest scale",
    "mixer α, finest scale",
    "mixer α, coarsest scale",
];

/// The colour bar's height in pixels, its tick marks included.
const BAR_HEIGHT: usize = 24;
const TICK_HEIGHT: usize = 8;
/// The first column that shows a map.
const FIRST_MAP_COLUMN: usize = 3;

/// One row's tiles as RGB 0..255, all `width × height`.
fn tiles(a: &Volume, b: &Volume, fused: &FusedImage) -> Vec<Vec<f32>> {
    let rgb = |v: &Volume| -> Vec<f32> {
        if v.channels == 3 {
            v.data.clone()
        } else {
            v.data.iter().flat_map(|&x| [x, x, x]).collect()
        }
    };
    let map = |values: &[f32]| -> Vec<f32> {
        values
            .iter()
            .flat_map(|&x| ColorMap::Rainbow.color(x).map(f32::from))
            .collect()
    };
    let maps = &fused.maps;
    let last = maps.alpha.len().saturating_sub(1);
    vec![
        rgb(a),
        rgb(b),
        rgb(&fused.image),
        map(&maps.reliability_a[0]),
        map(&maps.reliability_a[last]),
        map(&maps.alpha[0]),
        map(&maps.alpha[last]),
    ]
}

/// Writes the grid for `rows` (A, B, the network's result) to `path`.
pub fn write(rows: &[(Volume, Volume, FusedImage)], path: &Path) -> Result<()> {
    let Some((first, _, _)) = rows.first() else {
        bail!("no pairs to draw");
    };
    let [w, h, _] = first.geometry.dims;
    let gap = 4;
    let columns = COLUMNS.len();
    let grid_height = rows.len() * (h + gap) - gap;
    let (width, height) = (columns * (w + gap) - gap, grid_height + gap + BAR_HEIGHT);
    let mut canvas = vec![255.0f32; width * height * 3];
    for (r, (a, b, fused)) in rows.iter().enumerate() {
        if a.geometry.dims != first.geometry.dims {
            bail!("figure rows must share one image size");
        }
        for (c, tile) in tiles(a, b, fused).iter().enumerate() {
            let (x0, y0) = (c * (w + gap), r * (h + gap));
            for y in 0..h {
                let source = &tile[y * w * 3..(y + 1) * w * 3];
                let start = ((y0 + y) * width + x0) * 3;
                canvas[start..start + w * 3].copy_from_slice(source);
            }
        }
    }
    // The colour bar under the map columns (the fourth to the last).
    let (x0, x1) = (FIRST_MAP_COLUMN * (w + gap), width);
    let y0 = grid_height + gap;
    for x in x0..x1 {
        let t = (x - x0) as f32 / (x1 - x0 - 1).max(1) as f32;
        let colour = ColorMap::Rainbow.color(t).map(f32::from);
        let tick = [0.0, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .any(|q| ((q * (x1 - x0 - 1) as f32).round() as usize + x0).abs_diff(x) <= 1);
        for y in y0..y0 + BAR_HEIGHT {
            let below_bar = y >= y0 + BAR_HEIGHT - TICK_HEIGHT;
            let pixel = match (tick, below_bar) {
                (true, true) => [0.0; 3],
                (false, true) => [255.0; 3],
                _ => colour,
            };
            let start = (y * width + x) * 3;
            canvas[start..start + 3].copy_from_slice(&pixel);
        }
    }
    let geometry = Geometry::axis_aligned([width, height, 1], [1.0; 3], [0.0; 3]);
    write_png(&Volume::with_channels(geometry, 3, canvas)?, path, true)?;
    Ok(())
}
