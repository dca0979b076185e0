//! The viewer's layers: the two studies and the network's outputs (fused image, reliability
//! of A and of B, mixer α per scale), all on the pair's grid, each with its own display style
//! (shown or hidden, opacity, colour map, window). Layers that fusion is still filling hold
//! NaN in the slices not yet computed; they are drawn transparent there.

use std::ops::Range;
use std::sync::Arc;

use crate::volume::Volume;
use crate::volume::colormap::ColorMap;
use crate::volume::intensity::{Window, percentile_bounds};
use crate::volume::{Modality, Units};

use super::studies::Side;

/// `count` NaN values (not computed yet), written on every core: the fusion's ten outputs at
/// 512² × 300 are 3 GB to fill when it starts. Zeroed memory comes from the system unfilled,
/// so the pages are first touched by the parallel fill.
fn not_computed(count: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let mut values = vec![0.0f32; count];
    values
        .par_chunks_mut(1 << 18)
        .for_each(|chunk| chunk.fill(f32::NAN));
    values
}

/// Which layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerId {
    Study(Side),
    Fused,
    /// Reliability of study A or B at scale `s` (0: finest).
    Reliability(Side, usize),
    /// Mixer weight α at scale `s` (1: wavelet expert, 0: spatial expert).
    Alpha(usize),
}

impl LayerId {
    /// The name shown in the layer list and read-outs.
    pub fn name(self) -> String {
        match self {
            Self::Study(Side::A) => "A".into(),
            Self::Study(Side::B) => "B".into(),
            Self::Fused => "fused".into(),
            Self::Reliability(Side::A, s) => format!("reliability A (scale {s})"),
            Self::Reliability(Side::B, s) => format!("reliability B (scale {s})"),
            Self::Alpha(s) => format!("mixer α (scale {s})"),
        }
    }

    /// The name in a narrow table: "A", "B", "fused", "rel A s0", "rel B s0", "α s0".
    pub fn short_name(self) -> String {
        match self {
            Self::Study(_) | Self::Fused => self.name(),
            Self::Reliability(Side::A, s) => format!("rel A s{s}"),
            Self::Reliability(Side::B, s) => format!("rel B s{s}"),
            Self::Alpha(s) => format!("α s{s}"),
        }
    }

    /// A stable number for GPU resources and widget ids.
    pub fn key(self) -> u64 {
        match self {
            Self::Study(Side::A) => 1,
            Self::Study(Side::B) => 2,
            Self::Fused => 3,
            Self::Reliability(Side::A, s) => 100 + s as u64,
            Self::Reliability(Side::B, s) => 200 + s as u64,
            Self::Alpha(s) => 300 + s as u64,
        }
    }
}

/// How a layer is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    pub visible: bool,
    /// 0: invisible, 1: covers what is below (linear in between).
    pub opacity: f32,
    pub colormap: ColorMap,
    pub window: Window,
    /// Colour the layer with this study's chroma: the layer's own luminance (Y of YCbCr)
    /// with the Cb/Cr of the study's colour-mapped value at the same voxel — the fused
    /// PET–MR/CT shown in the PET's colours, as the benchmark protocol fuses colour PET.
    pub chroma_from: Option<Side>,
    /// Lower threshold, in the layer's units: below it an overlay is not drawn, so the
    /// layers beneath show unchanged (PET over anatomy).
    pub threshold: Option<f32>,
}

impl Style {
    /// The threshold PET and SPECT overlays get by default: a quarter of the way up their
    /// window (SUV 1.5 in a 0–6 window), above muscle and fat, below organs and lesions.
    pub fn default_threshold(window: Window) -> f32 {
        window.center - window.width / 2.0 + 0.25 * window.width
    }
}

/// A layer: values on the pair's grid and how to draw them.
pub struct Layer {
    pub id: LayerId,
    pub volume: Arc<Volume>,
    pub style: Style,
    /// Slices (along the grid's third axis) changed since the GPU copy was made.
    pub dirty: Option<Range<usize>>,
    /// Bumped when the volume is replaced, so the GPU copy is remade.
    pub generation: u64,
    /// Window presets offered for this layer (computed once: percentiles cost a pass over
    /// the volume).
    pub presets: Vec<(&'static str, Window)>,
    /// The window the layer opened with (`Window::default_for` its volume): what the
    /// network is fed, whatever window the reader has chosen since.
    pub default_window: Window,
}

impl Layer {
    /// A study layer with its modality's default window and colour map.
    pub fn study(side: Side, volume: Arc<Volume>) -> Self {
        let colormap = if volume.modality.is_functional() {
            ColorMap::HotIron
        } else {
            ColorMap::Gray
        };
        // One pass for the percentiles behind both the default window and the auto preset.
        let bounds = percentile_bounds(&volume);
        let window = Window::default_given(&volume, bounds);
        let mut layer = Self::new(
            LayerId::Study(side),
            volume,
            Style {
                visible: true,
                opacity: 1.0,
                colormap,
                window,
                chroma_from: None,
                threshold: None,
            },
        );
        layer.presets = presets(&layer.volume, Window::between(bounds));
        layer
    }

    /// A network output layer (values 0..1), empty (NaN) until fusion fills it.
    pub fn output(id: LayerId, like: &Volume) -> Self {
        let volume = Volume {
            geometry: like.geometry.clone(),
            data: not_computed(like.geometry.voxel_count()),
            channels: 1,
            warnings: Vec::new(),
            identity: like.identity.clone(),
            modality: Modality::Other("FUSED".into()),
            units: Units::Other(
                match id {
                    LayerId::Fused => "fused",
                    LayerId::Reliability(..) => "reliability",
                    _ => "α",
                }
                .into(),
            ),
        };
        let (colormap, opacity, visible) = match id {
            LayerId::Fused => (ColorMap::Gray, 1.0, true),
            _ => (ColorMap::Rainbow, 0.5, false),
        };
        Self::new(
            id,
            Arc::new(volume),
            Style {
                visible,
                opacity,
                colormap,
                window: Window::from_range(0.0, 1.0),
                chroma_from: None,
                threshold: None,
            },
        )
    }

    fn new(id: LayerId, volume: Arc<Volume>, style: Style) -> Self {
        Self {
            id,
            volume,
            default_window: style.window,
            style,
            dirty: None,
            generation: 0,
            presets: Vec::new(),
        }
    }

    /// Puts `volume` in place of the layer's (a study moved by registration): it is drawn
    /// anew, and its default window — what the network is fed — is its own.
    pub fn replace_volume(&mut self, volume: Arc<Volume>) {
        self.default_window = Window::default_for(&volume);
        self.volume = volume;
        self.generation += 1;
    }

    /// Writes slices `first..` from `values` (whole slices, x fastest).
    pub fn fill_slices(&mut self, first: usize, values: &[f32]) {
        let [nx, ny, nz] = self.volume.geometry.dims;
        let slice = nx * ny;
        let count = (values.len() / slice).min(nz.saturating_sub(first));
        if count == 0 {
            return;
        }
        let volume = Arc::make_mut(&mut self.volume);
        volume.data[first * slice..(first + count) * slice]
            .copy_from_slice(&values[..count * slice]);
        let range = first..first + count;
        self.dirty = Some(match self.dirty.take() {
            Some(old) => old.start.min(range.start)..old.end.max(range.end),
            None => range,
        });
    }

    /// The value at voxel `v`, in the layer's units (NaN where not computed yet).
    pub fn value(&self, v: [usize; 3]) -> f32 {
        self.volume.value(v[0], v[1], v[2])
    }
}

/// Window presets offered for a study of this modality, given its 0.5–99.5 % window:
/// (name, window).
pub fn presets(volume: &Volume, auto: Window) -> Vec<(&'static str, Window)> {
    let mut out = Vec::new();
    match (&volume.modality, &volume.units) {
        (Modality::Ct, _) => {
            out.push(("brain", Window::CT_BRAIN));
            out.push(("bone", Window::CT_BONE));
            out.push(("soft tissue", Window::CT_SOFT_TISSUE));
            out.push(("lung", Window::CT_LUNG));
        }
        (_, Units::SuvBw) => out.push(("SUV 0–6", Window::PET_SUV)),
        _ => {}
    }
    out.push(("auto (0.5–99.5 %)", auto));
    out
}

/// Text for a value in a layer's units: HU and SUV as such, maps as plain numbers.
pub fn format_value(value: f32, units: &Units) -> String {
    if value.is_nan() {
        return "—".into();
    }
    match units {
        Units::Hounsfield => format!("{value:.0} HU"),
        Units::SuvBw => format!("{value:.2} SUV"),
        Units::BqPerMl => format!("{value:.0} Bq/ml"),
        Units::Counts => format!("{value:.0} counts"),
        Units::Signal => format!("{value:.1} (MR signal)"),
        Units::Other(name) => format!("{value:.3} ({name})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Geometry;

    #[test]
    fn output_layers_fill_slice_by_slice() {
        let g = Geometry::axis_aligned([2, 2, 3], [1.0; 3], [0.0; 3]);
        let like = Volume::new(g, vec![0.0; 12]).expect("valid");
        let mut layer = Layer::output(LayerId::Fused, &like);
        assert!(layer.value([0, 0, 1]).is_nan());
        layer.fill_slices(1, &[0.5; 4]);
        assert_eq!(layer.value([1, 1, 1]), 0.5);
        assert!(layer.value([0, 0, 2]).is_nan());
        layer.fill_slices(2, &[0.25; 8]);
        assert_eq!(layer.dirty, Some(1..3));
        assert_eq!(layer.value([0, 0, 2]), 0.25);
    }

    #[test]
    fn ct_offers_the_four_ct_windows() {
        let g = Geometry::axis_aligned([2, 2, 1], [1.0; 3], [0.0; 3]);
        let ct = Volume::new(g, vec![0.0, 10.0, 20.0, 30.0])
            .expect("valid")
            .with_kind(Modality::Ct, Units::Hounsfield);
        let names: Vec<_> = presets(&ct, Window::between(percentile_bounds(&ct)))
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(names[..4], ["brain", "bone", "soft tissue", "lung"]);
        assert_eq!(format_value(-1000.4, &Units::Hounsfield), "-1000 HU");
        assert_eq!(format_value(f32::NAN, &Units::SuvBw), "—");
    }
}
