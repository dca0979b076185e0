//! `dualmine eval --figure`: a grid of example pairs, one row per pair — A, B, the fused
//! image, the reliability map of A at the finest and coarsest scale, and the mixer weight α
//! at the finest and coarsest scale (maps in gray, 0 black … 1 white).

use std::path::Path;

use anyhow::{Result, bail};

use dualmine::export::png::write_png;
use dualmine::fusion::images::FusedImage;
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
            .flat_map(|&x| {
                let g = (x * 255.0).clamp(0.0, 255.0);
                [g, g, g]
            })
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
    let (width, height) = (columns * (w + gap) - gap, rows.len() * (h + gap) - gap);
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
    let geometry = Geometry::axis_aligned([width, height, 1], [1.0; 3], [0.0; 3]);
    write_png(&Volume::with_channels(geometry, 3, canvas)?, path, true)?;
    Ok(())
}
