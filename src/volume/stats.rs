//! Simple intensity statistics over a volume: range, mean, percentiles.

use super::Volume;

/// Summary statistics of a volume's first channel (non-finite values ignored).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub min: f32,
    pub max: f32,
    pub mean: f64,
}

/// Min, max and mean of the first channel; `None` for a volume with no finite value.
pub fn stats(volume: &Volume) -> Option<Stats> {
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for v in volume.data.iter().step_by(volume.channels).copied() {
        if v.is_finite() {
            min = min.min(v);
            max = max.max(v);
            sum += f64::from(v);
            count += 1;
        }
    }
    (count > 0).then(|| Stats {
        min,
        max,
        mean: sum / count as f64,
    })
}

/// The `q`-th percentile (0..=100) of the first channel, by selection on a copy.
pub fn percentile(volume: &Volume, q: f64) -> Option<f32> {
    percentiles(volume, [q]).map(|[p]| p)
}

/// Several percentiles (0..=100) of the finite values of the first channel from one copy of
/// them; `None` when there is none.
pub fn percentiles<const N: usize>(volume: &Volume, qs: [f64; N]) -> Option<[f32; N]> {
    let mut values: Vec<f32> = volume
        .data
        .iter()
        .step_by(volume.channels)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    let last = (values.len() - 1) as f64;
    Some(qs.map(|q| {
        let rank = ((q.clamp(0.0, 100.0) / 100.0) * last).round() as usize;
        *values.select_nth_unstable_by(rank, f32::total_cmp).1
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Geometry;

    #[test]
    fn stats_and_percentiles() {
        let g = Geometry::axis_aligned([101, 1, 1], [1.0; 3], [0.0; 3]);
        let v = Volume::new(g, (0..101).map(|v| v as f32).collect()).expect("valid");
        let s = stats(&v).expect("finite");
        assert_eq!((s.min, s.max, s.mean), (0.0, 100.0, 50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 0.0), Some(0.0));
        // Several at once, in any order, from one copy.
        assert_eq!(percentiles(&v, [99.0, 0.5, 50.0]), Some([99.0, 1.0, 50.0]));
    }
}
