//! Training batches from registered image pairs: a seeded random pair, one of the 8
//! flips/90° rotations (the same for A and B), and a square crop that holds some anatomy.

/// A registered pair of Y planes in [0, 1] (x fastest), with A's chroma when A is a
/// colour (PET/SPECT) image: Cb and Cr planes centred on 0, in the same units as Y.
#[derive(Clone, Debug)]
pub struct TrainingPair {
    pub width: usize,
    pub height: usize,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub chroma: Option<[Vec<f32>; 2]>,
}

impl TrainingPair {
    /// Sets A's chroma from 8-bit (Cb, Cr) pairs (centred on 128).
    pub fn with_chroma(mut self, chroma: &[[f32; 2]]) -> Self {
        let plane = |i: usize| chroma.iter().map(|c| (c[i] - 128.0) / 255.0).collect();
        self.chroma = Some([plane(0), plane(1)]);
        self
    }
}

/// A small, seeded, reproducible generator (SplitMix64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A batch: A and B crops and A's chroma (zero for gray sources), `count × side × side`
/// values each.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub count: usize,
    pub side: usize,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub cb: Vec<f32>,
    pub cr: Vec<f32>,
}

/// Mean of a crop below which it is mostly background and is drawn again (up to 8 times).
const MIN_CONTENT: f32 = 0.05;

/// Draws `count` augmented crops of `side × side` (the whole image when it is smaller).
pub fn draw_batch(pairs: &[TrainingPair], count: usize, side: usize, rng: &mut Rng) -> Batch {
    let mut batch = Batch {
        count,
        side,
        a: Vec::with_capacity(count * side * side),
        b: Vec::with_capacity(count * side * side),
        cb: Vec::with_capacity(count * side * side),
        cr: Vec::with_capacity(count * side * side),
    };
    for _ in 0..count {
        let pair = &pairs[rng.below(pairs.len())];
        let transform = rng.below(8);
        let mut chosen = None;
        for _ in 0..8 {
            let x0 = rng.below(pair.width.saturating_sub(side) + 1);
            let y0 = rng.below(pair.height.saturating_sub(side) + 1);
            let (a, b) = (
                crop(&pair.a, pair, x0, y0, side, transform),
                crop(&pair.b, pair, x0, y0, side, transform),
            );
            let content = a.iter().chain(&b).sum::<f32>() / (2 * side * side) as f32;
            let good = content >= MIN_CONTENT;
            chosen = Some((a, b, x0, y0));
            if good {
                break;
            }
        }
        if let Some((a, b, x0, y0)) = chosen {
            batch.a.extend(a);
            batch.b.extend(b);
            match &pair.chroma {
                Some([cb, cr]) => {
                    batch.cb.extend(crop(cb, pair, x0, y0, side, transform));
                    batch.cr.extend(crop(cr, pair, x0, y0, side, transform));
                }
                None => {
                    batch.cb.extend(std::iter::repeat_n(0.0, side * side));
                    batch.cr.extend(std::iter::repeat_n(0.0, side * side));
                }
            }
        }
    }
    batch
}

/// The crop at (x0, y0) seen through one of the 8 symmetries of the square; pixels beyond
/// the image repeat its edge.
fn crop(
    plane: &[f32],
    pair: &TrainingPair,
    x0: usize,
    y0: usize,
    side: usize,
    transform: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(side * side);
    for y in 0..side {
        for x in 0..side {
            let (mut u, mut v) = if transform & 1 == 1 { (y, x) } else { (x, y) };
            if transform & 2 == 2 {
                u = side - 1 - u;
            }
            if transform & 4 == 4 {
                v = side - 1 - v;
            }
            let sx = (x0 + u).min(pair.width - 1);
            let sy = (y0 + v).min(pair.height - 1);
            out.push(plane[sy * pair.width + sx]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_reproducible_and_keep_a_and_b_registered() {
        let (w, h) = (40, 30);
        let a: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 / w as f32).collect();
        let b: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
        // Cb = 128 + 255·A and Cr = 128 − 255·A in 8-bit units: centred, ±A.
        let chroma: Vec<[f32; 2]> = a
            .iter()
            .map(|v| [128.0 + 255.0 * v, 128.0 - 255.0 * v])
            .collect();
        let pairs = vec![
            TrainingPair {
                width: w,
                height: h,
                a,
                b,
                chroma: None,
            }
            .with_chroma(&chroma),
        ];
        let first = draw_batch(&pairs, 3, 16, &mut Rng(7));
        assert_eq!(first, draw_batch(&pairs, 3, 16, &mut Rng(7)));
        assert_ne!(first, draw_batch(&pairs, 3, 16, &mut Rng(8)));
        assert_eq!(first.a.len(), 3 * 16 * 16);
        // B = 1 − A everywhere, so every crop must keep that relation.
        assert!(
            first
                .a
                .iter()
                .zip(&first.b)
                .all(|(x, y)| (x + y - 1.0).abs() < 1e-6)
        );
        // The chroma planes travel with A through the same crop and symmetry.
        for ((a, cb), cr) in first.a.iter().zip(&first.cb).zip(&first.cr) {
            assert!((cb - a).abs() < 1e-6 && (cr + a).abs() < 1e-6);
        }
        let gray = TrainingPair {
            chroma: None,
            ..pairs[0].clone()
        };
        let plain = draw_batch(&[gray], 2, 8, &mut Rng(1));
        assert!(plain.cb.iter().chain(&plain.cr).all(|v| *v == 0.0));
        assert_eq!(plain.cb.len(), 2 * 8 * 8);
    }
}
