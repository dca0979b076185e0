//! Is a fusion local? Issue 16's measure of how far a fused image departs from *any* global
//! function of its two sources, and the two numbers that say whether a network's
//! reliability maps carry information (their spread) and are used (the ablation).
//!
//! Locality residual: the foreground pixels (A or B above 10 of 255, on luminance) go into
//! cells by their source values — B in steps of 2 levels, a gray A likewise, a colour A by
//! its exact RGB colour — and the residual is the RMS over those pixels of F minus the mean F
//! of the *other* pixels of its cell (cells of one pixel left out; for a colour result, pixels
//! whose fused RGB is clipped at 0 or 255 in any channel left out). F is the 8-bit luminance
//! (BT.601 Y, rounded) of the fused image. Any global blend, gain, offset or clamp scores 0.
//!
//! Images are interleaved 0..255 values (`f32`, as `Volume` holds them) with 1 or 3
//! channels, all of one size.

use std::collections::HashMap;

/// Luminance threshold of the foreground (of 255).
pub const FOREGROUND_LEVEL: f32 = 10.0;

/// An interleaved 0..255 image of 1 (gray) or 3 (RGB) channels.
#[derive(Clone, Copy, Debug)]
pub struct Image8<'a> {
    pub data: &'a [f32],
    pub channels: usize,
}

impl Image8<'_> {
    fn pixels(&self) -> usize {
        self.data.len() / self.channels.max(1)
    }

    /// BT.601 luminance of pixel `i` as an 8-bit file holds it (channels rounded and
    /// clamped first), unrounded.
    fn luma(&self, i: usize) -> f32 {
        let byte = |v: f32| v.round().clamp(0.0, 255.0);
        if self.channels >= 3 {
            let p = &self.data[i * self.channels..];
            0.299 * byte(p[0]) + 0.587 * byte(p[1]) + 0.114 * byte(p[2])
        } else {
            byte(self.data[i])
        }
    }

    fn clipped(&self, i: usize) -> bool {
        self.channels >= 3
            && self.data[i * self.channels..i * self.channels + 3]
                .iter()
                .any(|&v| v.round() <= 0.0 || v.round() >= 255.0)
    }
}

/// The foreground mask: A or B (luminance) above [`FOREGROUND_LEVEL`].
pub fn foreground(a: Image8, b: Image8) -> Vec<bool> {
    (0..a.pixels().min(b.pixels()))
        .map(|i| a.luma(i) > FOREGROUND_LEVEL || b.luma(i) > FOREGROUND_LEVEL)
        .collect()
}

/// The locality residual of `fused` against sources `a` and `b` (grey levels); `None` when
/// the sizes differ or no cell holds two pixels.
pub fn locality_residual(a: Image8, b: Image8, fused: Image8) -> Option<f64> {
    let n = a.pixels();
    if b.pixels() != n || fused.pixels() != n {
        return None;
    }
    let mask = foreground(a, b);
    let cell = |i: usize| -> u64 {
        let key_a = if a.channels >= 3 {
            let p = &a.data[i * a.channels..];
            let byte = |v: f32| v.round().clamp(0.0, 255.0) as u64;
            (1 << 24) | (byte(p[0]) << 16) | (byte(p[1]) << 8) | byte(p[2])
        } else {
            (a.luma(i).round().clamp(0.0, 255.0) as u64) / 2
        };
        let key_b = (b.luma(i).round().clamp(0.0, 255.0) as u64) / 2;
        (key_a << 8) | key_b
    };
    let kept: Vec<(u64, f64)> = (0..n)
        .filter(|&i| mask[i] && !fused.clipped(i))
        .map(|i| (cell(i), f64::from(fused.luma(i).round())))
        .collect();
    let mut cells: HashMap<u64, (f64, usize)> = HashMap::new();
    for &(key, f) in &kept {
        let entry = cells.entry(key).or_default();
        entry.0 += f;
        entry.1 += 1;
    }
    let (mut squares, mut count) = (0.0, 0usize);
    for (key, f) in kept {
        let (sum, members) = cells[&key];
        if members > 1 {
            let others = (sum - f) / (members - 1) as f64;
            squares += (f - others).powi(2);
            count += 1;
        }
    }
    (count > 0).then(|| (squares / count as f64).sqrt())
}

/// The spread of a reliability map over the foreground: its 95th minus its 5th percentile.
pub fn percentile_span(map: &[f32], mask: &[bool]) -> Option<f32> {
    let mut values: Vec<f32> = map
        .iter()
        .zip(mask)
        .filter(|(v, m)| **m && v.is_finite())
        .map(|(v, _)| *v)
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let at = |q: f32| values[((values.len() - 1) as f32 * q).round() as usize];
    Some(at(0.95) - at(0.05))
}

/// Mean absolute difference of two images over the foreground (same units as the images).
pub fn mean_absolute_difference(x: &[f32], y: &[f32], mask: &[bool]) -> Option<f64> {
    let (sum, count) = x
        .iter()
        .zip(y)
        .zip(mask)
        .filter(|(_, m)| **m)
        .fold((0.0, 0usize), |(s, c), ((x, y), _)| {
            (s + f64::from((x - y).abs()), c + 1)
        });
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(data: &[f32], channels: usize) -> Image8<'_> {
        Image8 { data, channels }
    }

    /// The residual of a gray `fused` image over [`sources`].
    fn gray_residual(fused: &[f32]) -> Option<f64> {
        let (a, b) = sources();
        locality_residual(image(&a, 1), image(&b, 1), image(fused, 1))
    }

    /// Two sources with many repeated value pairs, as real images have.
    fn sources() -> (Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..4096).map(|i| (20 + (i * 7) % 60) as f32).collect();
        let b: Vec<f32> = (0..4096).map(|i| (30 + (i * 13) % 40) as f32).collect();
        (a, b)
    }

    #[test]
    fn any_global_function_scores_zero() {
        let (a, b) = sources();
        let blend: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (0.3 * x + 0.9 * y - 4.0).clamp(0.0, 80.0).round())
            .collect();
        assert_eq!(gray_residual(&blend), Some(0.0));
    }

    #[test]
    fn a_position_dependent_fusion_scores_its_spread() {
        let (a, b) = sources();
        // The average plus ±3 levels by position (left and right halves of each row):
        // within a cell the other pixels' mean sits near the average, so the residual is
        // close to 3.
        let local: Vec<f32> = a
            .iter()
            .zip(&b)
            .enumerate()
            .map(|(i, (x, y))| ((x + y) / 2.0).round() + if i % 64 < 32 { 3.0 } else { -3.0 })
            .collect();
        let residual = gray_residual(&local).expect("cells with several pixels");
        assert!((2.7..3.4).contains(&residual), "{residual}");
    }

    #[test]
    fn clipped_colour_pixels_and_the_background_are_left_out() {
        // A colour A whose pixels all share one colour; F varies only where it is clipped
        // or outside the foreground, so the residual is zero.
        let a: Vec<f32> = (0..300).flat_map(|_| [200.0, 40.0, 10.0]).collect();
        let b: Vec<f32> = (0..300).map(|i| if i < 200 { 50.0 } else { 0.0 }).collect();
        let fused: Vec<f32> = (0..300)
            .flat_map(|i| match i {
                0..100 => [120.0, 80.0, 60.0],
                100..200 => [255.0, (i % 7) as f32, 60.0],
                _ => [120.0, 80.0, 60.0],
            })
            .collect();
        // The A colour's luminance is above 10, so every pixel is foreground; the clipped
        // ones (100..200) vary but are skipped.
        let residual = locality_residual(image(&a, 3), image(&b, 1), image(&fused, 3));
        assert_eq!(residual, Some(0.0));
    }

    #[test]
    fn span_and_difference_use_only_the_foreground() {
        let map: Vec<f32> = (0..101).map(|i| i as f32 / 100.0).collect();
        let mask = vec![true; 101];
        let span = percentile_span(&map, &mask).expect("values");
        assert!((span - 0.9).abs() < 1e-6, "{span}");
        let none = vec![false; 101];
        assert_eq!(percentile_span(&map, &none), None);
        let shifted: Vec<f32> = map.iter().map(|v| v + 2.0).collect();
        let mut half = vec![true; 101];
        half[50..].fill(false);
        let d = mean_absolute_difference(&map, &shifted, &half).expect("pixels");
        assert!((d - 2.0).abs() < 1e-6);
    }
}
