//! The Fuser engine: runs W-DUALMINE on the best device available and fuses slice pairs or
//! whole volume pairs (in batches of slices, with progress and cancel).
//!
//! Device choice: `Auto` takes burn-wgpu on a hardware (discrete or integrated) GPU and
//! otherwise burn's CPU backend (`flex`) — a software Vulkan adapter is slower than `flex`,
//! so it is only used when asked for (`Gpu`). Inputs are mapped to [0, 1] with each study's
//! default window (`volume::intensity`), the same mapping the viewer shows by default.

use std::ops::Range;
use std::panic::catch_unwind;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use thiserror::Error;

use super::network::local::LocalWeights;
use super::network::model::{DualMine, DualMineConfig, ForwardOptions};
use super::network::weights::{WeightsError, load};
use super::ops::cpu::freed_memory::KeepFreedMemory;
use crate::volume::intensity::Window;
use crate::volume::{Modality, Units, Volume, VolumeError};

/// Which device to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A hardware GPU through wgpu when one exists, else the CPU.
    Auto,
    /// wgpu on whatever adapter it finds (a software one included).
    Gpu,
    /// burn's CPU backend.
    Cpu,
}

/// Why fusion could not run.
#[derive(Debug, Error)]
pub enum FuserError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("no GPU could be initialised: {0}")]
    NoGpu(String),
    #[error(
        "the studies are on different grids ({a:?} and {b:?} voxels): resample the second onto \
         the first before fusing"
    )]
    GridMismatch { a: [usize; 3], b: [usize; 3] },
    #[error("only gray studies can be fused (a study has {0} channels)")]
    NotGray(usize),
    #[error("fusion was cancelled")]
    Cancelled,
    #[error("the device returned unusable results: {0}")]
    Device(String),
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// The network's outputs for a volume pair, all on the first study's grid.
#[derive(Debug)]
pub struct FusionResult {
    /// The fused image, 0..1.
    pub fused: Volume,
    /// Reliability of each study per scale (finest first), 0..1, summing to 1.
    pub reliability_a: Vec<Volume>,
    pub reliability_b: Vec<Volume>,
    /// Mixer weight α per scale (1: wavelet expert, 0: spatial expert).
    pub alpha: Vec<Volume>,
}

/// The network's outputs as plain values, x fastest then rows then slices.
#[derive(Debug)]
pub struct FusionMaps {
    pub fused: Vec<f32>,
    pub reliability_a: Vec<Vec<f32>>,
    pub reliability_b: Vec<Vec<f32>>,
    pub alpha: Vec<Vec<f32>>,
}

/// How many slices of a volume its gains are taken from (`Fuser::volume_gains`).
pub const GAIN_SLICES: usize = 16;

/// A volume's gains taken slice by slice: the slices [`Fuser::volume_gains`] samples, the
/// gains found so far and their median. `volume_gains` fills it in one call; the viewer's
/// job fills it a slice at a time, so that it can fuse the slice in view in between.
#[derive(Clone, Debug)]
pub struct GainSample {
    slices: Vec<usize>,
    /// The gains of the first `found.len()` slices, and whether each had foreground.
    found: Vec<([f32; 3], bool)>,
}

impl GainSample {
    /// The sample of a volume of `nz` slices: up to [`GAIN_SLICES`] spread evenly through it,
    /// none for a single image (which keeps its own gains).
    pub fn new(nz: usize) -> Self {
        let count = if nz < 2 { 0 } else { nz.min(GAIN_SLICES) };
        Self {
            slices: (0..count).map(|i| (2 * i + 1) * nz / (2 * count)).collect(),
            found: Vec::with_capacity(count),
        }
    }

    /// Every slice of the sample, in the order their gains are added.
    pub fn slices(&self) -> &[usize] {
        &self.slices
    }

    /// The next slice whose gains are wanted, or `None` when all are in.
    pub fn next_slice(&self) -> Option<usize> {
        self.slices.get(self.found.len()).copied()
    }

    /// Adds the gains of the next slice ([`Self::next_slice`]) and whether it has
    /// foreground ([`has_foreground`]).
    pub fn add(&mut self, gains: [f32; 3], foreground: bool) {
        if self.found.len() < self.slices.len() {
            self.found.push((gains, foreground));
        }
    }

    /// The median, channel by channel, of the gains of the slices with foreground (of all
    /// when none has); `None` for a single image or before every slice is in.
    pub fn median(&self) -> Option<[f32; 3]> {
        if self.slices.is_empty() || self.found.len() < self.slices.len() {
            return None;
        }
        let busy: Vec<[f32; 3]> = self.found.iter().filter(|f| f.1).map(|f| f.0).collect();
        let kept = if busy.is_empty() {
            self.found.iter().map(|f| f.0).collect()
        } else {
            busy
        };
        Some([0, 1, 2].map(|c| {
            let mut values: Vec<f32> = kept.iter().map(|g| g[c]).collect();
            values.sort_by(f32::total_cmp);
            let middle = values.len() / 2;
            if values.len() % 2 == 1 {
                values[middle]
            } else {
                (values[middle - 1] + values[middle]) / 2.0
            }
        }))
    }
}

/// Whether a slice pair (mapped to [0, 1]) counts in a volume's gains: at least a tenth of
/// its pixels above 0.05 in either study.
pub fn has_foreground(a: &[f32], b: &[f32]) -> bool {
    let foreground = a.iter().zip(b).filter(|(x, y)| **x > 0.05 || **y > 0.05);
    foreground.count() * 10 >= a.len()
}

/// W-DUALMINE ready to run on a device.
#[derive(Clone)]
pub struct Fuser {
    model: DualMine,
    device: Device,
    description: String,
    /// How inference runs: the detail control, and the ablations `eval` measures (every
    /// reliability map or every mixer weight fixed; none for fusion).
    options: ForwardOptions,
}

/// How many GPU probes are running now (see [`probing_gpu`]).
static GPU_PROBES: AtomicUsize = AtomicUsize::new(0);

/// Whether a GPU probe is running: while it is, wgpu's and the drivers' complaints about
/// adapters that are not there (EGL, DRI, …) are expected and say nothing wrong, so a logger
/// may leave them out. Errors of a device in use are reported as errors by the caller.
pub fn probing_gpu() -> bool {
    GPU_PROBES.load(Ordering::Relaxed) > 0
}

/// Runs a wgpu initialisation as a probe: with [`probing_gpu`] true while it runs, a panic
/// of the runtime caught, and any failure as text.
pub fn probe_wgpu<T, E: std::fmt::Display>(
    init: impl FnOnce() -> Result<T, E> + std::panic::UnwindSafe,
) -> Result<T, String> {
    struct Probe;
    impl Drop for Probe {
        fn drop(&mut self) {
            GPU_PROBES.fetch_sub(1, Ordering::Relaxed);
        }
    }
    GPU_PROBES.fetch_add(1, Ordering::Relaxed);
    let _probe = Probe;
    catch_unwind(init)
        .map_err(|_| "the wgpu runtime failed to start".to_string())?
        .map_err(|e| e.to_string())
}

/// A wgpu device of the given kind, if it can be initialised.
fn try_wgpu(kind: DeviceKind) -> Result<Device, String> {
    probe_wgpu(|| Device::wgpu_options().device_kind(kind).init())
}

impl Backend {
    /// `gpu`, `cpu`, anything else `auto`.
    pub fn parse(name: &str) -> Backend {
        match name {
            "gpu" => Backend::Gpu,
            "cpu" => Backend::Cpu,
            _ => Backend::Auto,
        }
    }
}

/// The device for `backend`, and a description of it in words.
pub fn pick_device(backend: Backend) -> Result<(Device, String), FuserError> {
    Ok(match backend {
        Backend::Cpu => (Device::flex(), "CPU (burn flex)".to_string()),
        Backend::Gpu => (
            try_wgpu(DeviceKind::DefaultDevice).map_err(FuserError::NoGpu)?,
            "GPU (burn wgpu)".to_string(),
        ),
        Backend::Auto => match try_wgpu(DeviceKind::DiscreteGpu(0))
            .or_else(|_| try_wgpu(DeviceKind::IntegratedGpu(0)))
        {
            Ok(device) => (device, "GPU (burn wgpu)".to_string()),
            Err(_) => (
                Device::flex(),
                "CPU (burn flex): no hardware GPU adapter found".to_string(),
            ),
        },
    })
}

impl Fuser {
    /// Loads `config` weights from `weights` onto the chosen device.
    pub fn new(
        config: &DualMineConfig,
        weights: &Path,
        backend: Backend,
    ) -> Result<Self, FuserError> {
        let (device, description) = pick_device(backend)?;
        let model = load(config, weights, &device)?;
        Ok(Self::from_model(model, device, description))
    }

    /// The weights that ship with the program for `task` ([`super::shipped`]) on the
    /// chosen device.
    pub fn shipped(task: &str, backend: Backend) -> Result<Self, FuserError> {
        let (device, description) = pick_device(backend)?;
        let model = super::shipped::load(task, &device)?;
        let mut fuser = Self::from_model(model, device, description);
        fuser.set_detail(super::shipped::default_detail(task));
        Ok(fuser)
    }

    /// Wraps a model already on `device` (e.g. one just trained).
    pub fn from_model(model: DualMine, device: Device, description: String) -> Self {
        Self {
            model,
            device,
            description,
            options: ForwardOptions::default(),
        }
    }

    /// The same network with every reliability map replaced by `value` — what the fused
    /// image would be if the maps said nothing (0.5: trust both sources equally everywhere).
    pub fn with_fixed_reliability(&self, value: f32) -> Self {
        self.ablated(ForwardOptions {
            fixed_reliability: Some(value),
            ..self.options
        })
    }

    /// The same network with every mixer weight α replaced by `value` — what the fused image
    /// would be if the mixer chose nothing (0.5: both experts equally everywhere).
    pub fn with_fixed_alpha(&self, value: f32) -> Self {
        self.ablated(ForwardOptions {
            fixed_alpha: Some(value),
            ..self.options
        })
    }

    /// The same network run with `options`.
    fn ablated(&self, options: ForwardOptions) -> Self {
        Self {
            options,
            ..self.clone()
        }
    }

    /// Sets the detail control d (0 faithful … 1 most local; a NaN counts as 0).
    pub fn set_detail(&mut self, d: f32) {
        self.options.detail = if d.is_nan() { 0.0 } else { d.clamp(0.0, 1.0) };
    }

    /// The detail control d the network runs with.
    pub fn detail(&self) -> f32 {
        self.options.detail
    }

    /// Whether the network has the local part that d steers (`network::local`).
    pub fn has_local_part(&self) -> bool {
        self.model.local_weights().is_some()
    }

    /// Replaces the local part's weights (how they are chosen on the validation split);
    /// `false` when the network has no local part.
    pub fn set_local_weights(&mut self, weights: &LocalWeights) -> bool {
        self.model.set_local_weights(weights)
    }

    /// γ of the model's local term (decoder).
    pub fn detail_gain(&self) -> f32 {
        self.model.detail_gain()
    }

    /// Runs the model with another γ (how the amount of local detail is chosen on the
    /// validation split for a trained network).
    pub fn set_detail_gain(&mut self, gain: f32) {
        self.model.set_detail_gain(gain);
    }

    /// Number of scales, hence of maps of each kind.
    pub fn scales(&self) -> usize {
        self.model.scales()
    }

    /// Which device runs the network, in words (for the one-line notice and status bar).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Fuses two volumes on the same grid, `batch` slices at a time, and keeps every
    /// output. `progress(done, total)` is called after each batch; returning `false`
    /// cancels.
    pub fn fuse_volumes(
        &self,
        a: &Volume,
        b: &Volume,
        batch: usize,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<FusionResult, FuserError> {
        let [nx, ny, nz] = a.geometry.dims;
        let mut all = FusionMaps::with_capacity(self.model.scales(), nx * ny * nz);
        self.fuse_volumes_in_batches(a, b, batch, &mut |slices, maps| {
            all.append(maps);
            Ok::<_, FuserError>(progress(slices.end, nz))
        })?;
        FusionResult::on_grid_of(a, all)
    }

    /// Fuses two volumes on the same grid, `batch` slices at a time, handing each batch's
    /// outputs to `each(its slices, maps)` as soon as they are made, so that the whole
    /// result need never be held (a fusion streamed into files). Each study is mapped to
    /// [0, 1] by its default window, batch by batch. `each` returning `Ok(false)` cancels
    /// ([`FuserError::Cancelled`]); its errors stop the fusion and are returned.
    pub fn fuse_volumes_in_batches<E: From<FuserError>>(
        &self,
        a: &Volume,
        b: &Volume,
        batch: usize,
        each: &mut dyn FnMut(Range<usize>, FusionMaps) -> Result<bool, E>,
    ) -> Result<(), E> {
        if a.geometry.dims != b.geometry.dims {
            return Err(FuserError::GridMismatch {
                a: a.geometry.dims,
                b: b.geometry.dims,
            }
            .into());
        }
        for v in [a, b] {
            if v.channels != 1 {
                return Err(FuserError::NotGray(v.channels).into());
            }
        }
        let _memory = KeepFreedMemory::new();
        let (window_a, window_b) = (Window::default_for(a), Window::default_for(b));
        let normalised = |window: &Window, values: &[f32]| -> Vec<f32> {
            values.iter().map(|v| window.normalise(*v)).collect()
        };
        let [nx, ny, nz] = a.geometry.dims;
        let slice = nx * ny;
        let gains = self.volume_gains_of(
            &|k| {
                let voxels = k * slice..(k + 1) * slice;
                (
                    normalised(&window_a, &a.data[voxels.clone()]),
                    normalised(&window_b, &b.data[voxels]),
                )
            },
            a.geometry.dims,
        )?;
        for slices in batches(nz, batch) {
            let voxels = slices.start * slice..slices.end * slice;
            let maps = self.fuse_batch(
                &normalised(&window_a, &a.data[voxels.clone()]),
                &normalised(&window_b, &b.data[voxels]),
                [nx, ny, slices.len()],
                gains,
            )?;
            if !each(slices.clone(), maps)? && slices.end < nz {
                return Err(FuserError::Cancelled.into());
            }
        }
        Ok(())
    }

    /// The decoder's gains and offset for a whole volume of inputs already mapped to [0, 1]
    /// (`dims` = columns, rows, slices): the median over up to [`GAIN_SLICES`] slices spread
    /// evenly through it (those with some foreground; all when none has), or `None` for a
    /// single image. A volume fused with them has one mix of its studies, not one per slice:
    /// per-slice gains change with each slice's content and show as bands across a lesion in
    /// coronal and sagittal views (issue 36).
    pub fn volume_gains(
        &self,
        a: &[f32],
        b: &[f32],
        dims: [usize; 3],
    ) -> Result<Option<[f32; 3]>, FuserError> {
        let [nx, ny, nz] = dims;
        let slice = nx * ny;
        if a.len() != slice * nz || b.len() != slice * nz {
            return Err(FuserError::Device(
                "input sizes do not match their grid".into(),
            ));
        }
        self.volume_gains_of(
            &|k| {
                let voxels = k * slice..(k + 1) * slice;
                (a[voxels.clone()].to_vec(), b[voxels].to_vec())
            },
            dims,
        )
    }

    /// [`Self::volume_gains`] with slice `k`'s inputs given by `slice_pair(k)`.
    fn volume_gains_of(
        &self,
        slice_pair: &dyn Fn(usize) -> (Vec<f32>, Vec<f32>),
        [nx, ny, nz]: [usize; 3],
    ) -> Result<Option<[f32; 3]>, FuserError> {
        let mut sample = GainSample::new(nz);
        let chosen = sample.slices().to_vec();
        for group in chosen.chunks(4) {
            let (mut a, mut b, mut busy) = (Vec::new(), Vec::new(), Vec::new());
            for &k in group {
                let (sa, sb) = slice_pair(k);
                busy.push(has_foreground(&sa, &sb));
                a.extend(sa);
                b.extend(sb);
            }
            let gains = self.image_gains(&a, &b, [nx, ny, group.len()])?;
            for (values, busy) in gains.into_iter().zip(busy) {
                sample.add(values, busy);
            }
        }
        Ok(sample.median())
    }

    /// `count` images of `nx` × `ny` values (x fastest) as a `[count, 1, ny, nx]` tensor on
    /// the fuser's device.
    fn images(&self, values: &[f32], [nx, ny, count]: [usize; 3]) -> Tensor<4> {
        Tensor::<4>::from_data(
            TensorData::new(values.to_vec(), [count, 1, ny, nx]),
            &self.device,
        )
    }

    /// The decoder's `[g_A, g_B, h]` for each of `count` images (`dims` = columns, rows,
    /// count).
    pub fn image_gains(
        &self,
        a: &[f32],
        b: &[f32],
        [nx, ny, count]: [usize; 3],
    ) -> Result<Vec<[f32; 3]>, FuserError> {
        let dims = [nx, ny, count];
        let correction = self
            .model
            .correction(self.images(a, dims), self.images(b, dims));
        let [ga, gb, h] = [correction.gain_a, correction.gain_b, correction.offset].map(host);
        let (ga, gb, h) = (ga?, gb?, h?);
        Ok((0..count)
            .map(|i| [ga.get(i), gb.get(i), h.get(i)].map(|v| v.copied().unwrap_or(0.0)))
            .collect())
    }

    /// Runs the network on inputs already mapped to [0, 1] (`dims` = columns, rows, slices),
    /// `batch` slices at a time, with the decoder's gains given (`volume_gains`) or computed
    /// for each slice; `progress(done, total)` returning `false` cancels.
    pub fn fuse_normalised(
        &self,
        a: &[f32],
        b: &[f32],
        dims: [usize; 3],
        batch: usize,
        gains: Option<[f32; 3]>,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<FusionMaps, FuserError> {
        let [nx, ny, nz] = dims;
        let slice = nx * ny;
        if a.len() != slice * nz || b.len() != slice * nz {
            return Err(FuserError::Device(
                "input sizes do not match their grid".into(),
            ));
        }
        let _memory = KeepFreedMemory::new();
        let mut maps = FusionMaps::with_capacity(self.model.scales(), slice * nz);
        for slices in batches(nz, batch) {
            let voxels = slices.start * slice..slices.end * slice;
            maps.append(self.fuse_batch(
                &a[voxels.clone()],
                &b[voxels],
                [nx, ny, slices.len()],
                gains,
            )?);
            if !progress(slices.end, nz) && slices.end < nz {
                return Err(FuserError::Cancelled);
            }
        }
        Ok(maps)
    }

    /// One batch of `count` slices (`dims` = columns, rows, count) through the network, with
    /// the decoder's gains given or computed per slice.
    fn fuse_batch(
        &self,
        a: &[f32],
        b: &[f32],
        [nx, ny, count]: [usize; 3],
        gains: Option<[f32; 3]>,
    ) -> Result<FusionMaps, FuserError> {
        let dims = [nx, ny, count];
        let options = ForwardOptions {
            gains,
            ..self.options
        };
        let out = self
            .model
            .forward_with(self.images(a, dims), self.images(b, dims), options);
        let all = |maps: Vec<Tensor<4>>| -> Result<Vec<Vec<f32>>, FuserError> {
            maps.into_iter().map(host).collect()
        };
        Ok(FusionMaps {
            fused: host(out.fused)?,
            reliability_a: all(out.reliability_a)?,
            reliability_b: all(out.reliability_b)?,
            alpha: all(out.alpha)?,
        })
    }
}

impl FusionMaps {
    /// No slices yet, `scales` maps of each kind, room for `voxels` values in each (so a
    /// volume collected batch by batch is never copied to grow).
    pub fn with_capacity(scales: usize, voxels: usize) -> Self {
        Self {
            fused: Vec::with_capacity(voxels),
            reliability_a: vec![Vec::with_capacity(voxels); scales],
            reliability_b: vec![Vec::with_capacity(voxels); scales],
            alpha: vec![Vec::with_capacity(voxels); scales],
        }
    }

    /// Appends the slices of the next batch (maps this one has no room for are dropped).
    pub fn append(&mut self, next: FusionMaps) {
        fn extend(into: &mut [Vec<f32>], from: Vec<Vec<f32>>) {
            for (into, from) in into.iter_mut().zip(from) {
                into.extend(from);
            }
        }
        self.fused.extend(next.fused);
        extend(&mut self.reliability_a, next.reliability_a);
        extend(&mut self.reliability_b, next.reliability_b);
        extend(&mut self.alpha, next.alpha);
    }

    /// The values of every output, in [`output_kinds`]' order: the fused image, then per
    /// scale the reliability of A, that of B and the mixer weight.
    pub fn outputs(&self) -> Vec<&[f32]> {
        let mut all = vec![self.fused.as_slice()];
        for s in 0..self.alpha.len() {
            all.extend([
                self.reliability_a[s].as_slice(),
                &self.reliability_b[s],
                &self.alpha[s],
            ]);
        }
        all
    }

    /// The fused image alone (the maps dropped).
    pub fn fused_only(self) -> Self {
        Self {
            fused: self.fused,
            ..Self::with_capacity(0, 0)
        }
    }
}

/// Units of the fused image (the network's 0..1 output).
const FUSED_UNITS: &str = "fused 0..1";
const RELIABILITY_UNITS: &str = "reliability";
const ALPHA_UNITS: &str = "mixer α";

/// The modality every fusion output carries.
pub fn output_modality() -> Modality {
    Modality::Other("FUSED".into())
}

/// Name and units of each output of a network with `scales` scales, in
/// [`FusionMaps::outputs`]' order: `fused`, then per scale `reliability_a_scale{s}`,
/// `reliability_b_scale{s}` and `alpha_scale{s}`.
pub fn output_kinds(scales: usize) -> Vec<(String, Units)> {
    let units = |u: &str| Units::Other(u.into());
    let mut all = vec![("fused".to_string(), units(FUSED_UNITS))];
    for s in 0..scales {
        all.extend([
            (format!("reliability_a_scale{s}"), units(RELIABILITY_UNITS)),
            (format!("reliability_b_scale{s}"), units(RELIABILITY_UNITS)),
            (format!("alpha_scale{s}"), units(ALPHA_UNITS)),
        ]);
    }
    all
}

impl FusionResult {
    /// The outputs of a whole volume as volumes on the grid of `a` (the first input).
    pub fn on_grid_of(a: &Volume, maps: FusionMaps) -> Result<Self, FuserError> {
        let volume = |data: Vec<f32>, units: &str| -> Result<Volume, FuserError> {
            let mut v = Volume::new(a.geometry.clone(), data)?;
            v.modality = output_modality();
            v.units = Units::Other(units.into());
            v.identity = a.identity.clone();
            Ok(v)
        };
        let volumes = |maps: Vec<Vec<f32>>, units: &str| -> Result<Vec<Volume>, FuserError> {
            maps.into_iter().map(|d| volume(d, units)).collect()
        };
        Ok(FusionResult {
            fused: volume(maps.fused, FUSED_UNITS)?,
            reliability_a: volumes(maps.reliability_a, RELIABILITY_UNITS)?,
            reliability_b: volumes(maps.reliability_b, RELIABILITY_UNITS)?,
            alpha: volumes(maps.alpha, ALPHA_UNITS)?,
        })
    }
}

/// The slices `0..count` in consecutive runs of `batch` (at least 1), the last one shorter.
fn batches(count: usize, batch: usize) -> impl Iterator<Item = Range<usize>> {
    let batch = batch.max(1);
    (0..count)
        .step_by(batch)
        .map(move |first| first..(first + batch).min(count))
}

/// A tensor's values on the host.
fn host(t: Tensor<4>) -> Result<Vec<f32>, FuserError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| FuserError::Device(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::network::weights::save;
    use crate::volume::Geometry;

    fn pair() -> (Volume, Volume) {
        let g = Geometry::axis_aligned([20, 12, 5], [1.0; 3], [0.0; 3]);
        let a: Vec<f32> = (0..1200).map(|i| (i % 37) as f32).collect();
        let b: Vec<f32> = (0..1200).map(|i| (i % 23) as f32 * 2.0).collect();
        (
            Volume::new(g.clone(), a)
                .expect("valid")
                .with_kind(Modality::Mr, Units::Signal),
            Volume::new(g, b)
                .expect("valid")
                .with_kind(Modality::Mr, Units::Signal),
        )
    }

    #[test]
    fn fuses_volumes_in_batches_with_progress_and_cancel() {
        let dir = tempfile::tempdir().expect("temp dir");
        let weights = dir.path().join("tiny.bpk");
        save(&DualMineConfig::tiny().init(&Device::flex()), &weights).expect("save");
        let fuser = Fuser::new(&DualMineConfig::tiny(), &weights, Backend::Cpu).expect("fuser");
        assert!(fuser.description().contains("CPU"));
        let (a, b) = pair();
        let mut calls = Vec::new();
        let result = fuser
            .fuse_volumes(&a, &b, 2, &mut |done, total| {
                calls.push((done, total));
                true
            })
            .expect("fused");
        assert_eq!(calls, vec![(2, 5), (4, 5), (5, 5)]);
        // Untrained weights: the fused image is the average of the windowed inputs.
        let (wa, wb) = (
            Window::default_for(&a).normalised(&a),
            Window::default_for(&b).normalised(&b),
        );
        for ((f, x), y) in result.fused.data.iter().zip(&wa).zip(&wb) {
            assert!((f - (x + y) / 2.0).abs() < 1e-6);
        }
        assert_eq!(result.alpha.len(), 3);
        assert_eq!(result.reliability_a[0].geometry, a.geometry);
        let cancelled = fuser.fuse_volumes(&a, &b, 2, &mut |_, _| false);
        assert!(matches!(cancelled, Err(FuserError::Cancelled)));
        let small = Volume::new(
            Geometry::axis_aligned([4, 4, 1], [1.0; 3], [0.0; 3]),
            vec![0.0; 16],
        )
        .expect("valid");
        assert!(matches!(
            fuser.fuse_volumes(&a, &small, 2, &mut |_, _| true),
            Err(FuserError::GridMismatch { .. })
        ));
        assert!(matches!(
            Fuser::new(
                &DualMineConfig::tiny(),
                &dir.path().join("none.bpk"),
                Backend::Cpu
            ),
            Err(FuserError::Weights(WeightsError::Missing { .. }))
        ));
    }

    #[test]
    fn a_volume_is_fused_with_the_median_of_its_slices_gains() {
        let device = Device::flex();
        let model = crate::fusion::shipped::load("pet-ct", &device).expect("shipped weights");
        let fuser = Fuser::from_model(model, device, "CPU".into());
        // Six 32 x 32 slices whose content (and so whose per-slice gains) differ.
        let [nx, ny, nz] = [32usize, 32, 6];
        let value = |i: usize, k: usize, phase: f32| {
            let (x, y) = ((i % nx) as f32, (i / nx) as f32);
            let blob = (-((x - 16.0).powi(2) + (y - 16.0).powi(2)) / (8.0 + 20.0 * k as f32)).exp();
            (0.5 + 0.4 * (x * 0.3 + phase).sin() * (k as f32 / 5.0)) * 0.5 + 0.5 * blob
        };
        let a: Vec<f32> = (0..nz)
            .flat_map(|k| (0..nx * ny).map(move |i| value(i, k, 0.0)))
            .collect();
        let b: Vec<f32> = (0..nz)
            .flat_map(|k| (0..nx * ny).map(move |i| value(i, k, 1.3) * (0.3 + 0.1 * k as f32)))
            .collect();
        let per_slice = fuser.image_gains(&a, &b, [nx, ny, nz]).expect("gains");
        assert!(
            per_slice
                .iter()
                .any(|g| (g[0] - per_slice[0][0]).abs() > 1e-3),
            "the slices' own gains differ: {per_slice:?}"
        );
        let gains = fuser
            .volume_gains(&a, &b, [nx, ny, nz])
            .expect("gains")
            .expect("a volume");
        for c in 0..3 {
            let mut values: Vec<f32> = per_slice.iter().map(|g| g[c]).collect();
            values.sort_by(f32::total_cmp);
            assert!((gains[c] - (values[2] + values[3]) / 2.0).abs() < 1e-6);
        }
        // Taken a slice at a time (the viewer's job), the same gains.
        let mut sample = GainSample::new(nz);
        assert_eq!(sample.slices(), &[0, 1, 2, 3, 4, 5]);
        while let Some(k) = sample.next_slice() {
            assert_eq!(sample.median(), None, "not before every slice is in");
            let voxels = k * nx * ny..(k + 1) * nx * ny;
            let (sa, sb) = (&a[voxels.clone()], &b[voxels]);
            let one = fuser.image_gains(sa, sb, [nx, ny, 1]).expect("gains")[0];
            sample.add(one, has_foreground(sa, sb));
        }
        let one_by_one = sample.median().expect("a volume");
        for c in 0..3 {
            assert!(
                (one_by_one[c] - gains[c]).abs() < 1e-5,
                "{one_by_one:?} {gains:?}"
            );
        }
        assert_eq!(GainSample::new(1).next_slice(), None);
        assert_eq!(GainSample::new(1).median(), None);
        assert_eq!(GainSample::new(300).slices().len(), GAIN_SLICES);
        // Fused with them, every slice has the volume's gains: slice 0 alone gives the same
        // values as in the batch, and they differ from slice 0 fused with its own gains.
        let whole = fuser
            .fuse_normalised(&a, &b, [nx, ny, nz], 3, Some(gains), &mut |_, _| true)
            .expect("fused");
        let first = |v: &[f32]| v[..nx * ny].to_vec();
        let alone = fuser
            .fuse_normalised(
                &first(&a),
                &first(&b),
                [nx, ny, 1],
                1,
                Some(gains),
                &mut |_, _| true,
            )
            .expect("fused");
        let largest = |x: &[f32], y: &[f32]| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(largest(&first(&whole.fused), &alone.fused) < 1e-5);
        let own = fuser
            .fuse_normalised(&first(&a), &first(&b), [nx, ny, 1], 1, None, &mut |_, _| {
                true
            })
            .expect("fused");
        assert!(largest(&own.fused, &alone.fused) > 1e-3);
        assert_eq!(
            fuser
                .volume_gains(&first(&a), &first(&b), [nx, ny, 1])
                .expect("one"),
            None
        );
    }
}
