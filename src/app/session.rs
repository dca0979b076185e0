//! What the viewer has open: the study pair, its layers, the cursor (the linked crosshair)
//! and the fusion job. No drawing here; the panes and panels read and change it.

use burn::tensor::Device;

use super::fusion_job::{FusionInputs, FusionJob};
use super::layers::{Layer, LayerId, Style};
use super::marks::{Measurement, MipCache, SphereDrag, Voi};
use super::studies::{Side, StudyPair};
use crate::fusion::network::model::DualMineConfig;
use crate::fusion::shipped;
use crate::volume::intensity::Window;
use crate::volume::plane::Orientation;
use crate::volume::transform::Transform;

/// The open studies and everything derived from them.
pub struct Session {
    pub pair: StudyPair,
    /// Study A, study B, then the network's outputs once fusion has started.
    pub layers: Vec<Layer>,
    /// The crosshair, in continuous voxel coordinates of the pair's grid.
    pub cursor: [f32; 3],
    /// The voxel under the mouse pointer, if any.
    pub hover: Option<[usize; 3]>,
    pub job: Option<FusionJob>,
    /// False while the studies' frames of reference differ and the user has not asked to
    /// fuse anyway.
    pub fusion_allowed: bool,
    /// The rigid transform the other study was put on the grid with, and its metric.
    pub registration: Option<(Transform, Option<f64>)>,
    /// Volumes of interest, in the order they were made.
    pub vois: Vec<Voi>,
    /// How many VOIs were ever made in this session: the next one's number (a deleted VOI's
    /// name is not given again).
    pub vois_made: usize,
    /// The sphere VOI being dragged out.
    pub sphere_drag: Option<SphereDrag>,
    /// Why the last VOI could not be made, or that it was clipped.
    pub voi_message: Option<String>,
    /// Distances measured with the ruler, and the one being dragged.
    pub measurements: Vec<Measurement>,
    pub ruler_drag: Option<Measurement>,
    /// The box VOI being dragged: where the drag began and where it is.
    pub box_drag: Option<[[f32; 3]; 2]>,
    /// The MIP pane's projection, kept while what it shows is unchanged.
    pub mip: Option<MipCache>,
    /// The detail control d the reader chose for the fused image (0 faithful … 1 most local
    /// detail); `None`: the model's default for the studies' task.
    pub detail: Option<f32>,
}

impl Session {
    pub fn new(pair: StudyPair) -> Self {
        let dims = pair.dims();
        let mut layers = vec![Layer::study(Side::A, pair.a.clone())];
        if let Some(b) = &pair.b {
            layers.push(Layer::study(Side::B, b.clone()));
        }
        // The other study is an overlay of the fusion pane: a PET or SPECT in its own colours
        // above a threshold, opaque (a voxel's colour is the one its pane's bar shows), the
        // anatomy unchanged below it; an anatomical study off until asked for.
        if let Some(layer) = layers
            .iter_mut()
            .find(|l| l.id == LayerId::Study(pair.reference.other()))
        {
            if layer.volume.modality.is_functional() {
                layer.style.visible = true;
                layer.style.opacity = 1.0;
                layer.style.threshold = Some(Style::default_threshold(layer.style.window));
            } else {
                layer.style.visible = false;
                layer.style.opacity = 0.5;
            }
        }
        let fusion_allowed = pair.frame_warning.is_none() && pair.b.is_some();
        Self {
            cursor: dims.map(|d| (d / 2) as f32 + 0.5),
            pair,
            layers,
            hover: None,
            job: None,
            fusion_allowed,
            detail: None,
            registration: None,
            vois: Vec::new(),
            vois_made: 0,
            sphere_drag: None,
            voi_message: None,
            measurements: Vec::new(),
            ruler_drag: None,
            box_drag: None,
            mip: None,
        }
    }

    /// The study that is a PET or SPECT, if one is.
    pub fn functional_side(&self) -> Option<Side> {
        [Side::A, Side::B].into_iter().find(|side| {
            self.layer(LayerId::Study(*side))
                .is_some_and(|l| l.volume.modality.is_functional())
        })
    }

    /// The study the reading tools work on (the threshold tool, the MIP): the PET or SPECT
    /// when there is one, else study A.
    pub fn reading_study(&self) -> LayerId {
        LayerId::Study(self.functional_side().unwrap_or(Side::A))
    }

    pub fn dims(&self) -> [usize; 3] {
        self.pair.dims()
    }

    pub fn layer(&self, id: LayerId) -> Option<&Layer> {
        self.layers.iter().find(|l| l.id == id)
    }

    pub fn layer_mut(&mut self, id: LayerId) -> Option<&mut Layer> {
        self.layers.iter_mut().find(|l| l.id == id)
    }

    /// The slice `orientation` shows (the cursor's voxel along its slice axis).
    pub fn slice(&self, orientation: Orientation) -> usize {
        let axis = orientation.slice_axis();
        (self.cursor[axis].max(0.0) as usize).min(self.dims()[axis].saturating_sub(1))
    }

    /// Moves the cursor by `steps` slices of `orientation`, staying in the grid.
    pub fn scroll(&mut self, orientation: Orientation, steps: i64) {
        let axis = orientation.slice_axis();
        let last = self.dims()[axis].saturating_sub(1) as i64;
        let slice = (self.slice(orientation) as i64)
            .saturating_add(steps)
            .clamp(0, last);
        self.cursor[axis] = slice as f32 + 0.5;
    }

    /// Starts fusing the two studies on `device` (replacing any earlier result).
    pub fn start_fusion(&mut self, device: Device, description: String) -> Result<(), String> {
        let inputs = self.fusion_inputs()?;
        self.layers.retain(|l| matches!(l.id, LayerId::Study(_)));
        let like = self.pair.a.clone();
        // The fused image in grey; a PET or SPECT overlay draws above it in its own colours.
        let mut outputs = vec![Layer::output(LayerId::Fused, &like)];
        let scales = DualMineConfig::named(shipped::CONFIG).channels.len();
        for s in 0..scales {
            outputs.push(Layer::output(LayerId::Reliability(Side::A, s), &like));
            outputs.push(Layer::output(LayerId::Reliability(Side::B, s), &like));
            outputs.push(Layer::output(LayerId::Alpha(s), &like));
        }
        self.layers.extend(outputs);
        self.job = Some(FusionJob::start(inputs, device, description));
        Ok(())
    }

    /// Fuses again at the detail control `d` (the reader moved it): the axial slice in view
    /// first, then the rest in the background; the outputs keep their styles and show the
    /// earlier fusion until each slice is replaced.
    pub fn set_detail(
        &mut self,
        d: f32,
        device: Device,
        description: String,
    ) -> Result<(), String> {
        self.detail = Some(d.clamp(0.0, 1.0));
        if !self.layers.iter().any(|l| l.id == LayerId::Fused) {
            return Ok(());
        }
        let gains = self.job.as_ref().and_then(|j| j.gains);
        let mut inputs = self.fusion_inputs()?;
        inputs.gains = gains;
        self.job = Some(FusionJob::start(inputs, device, description));
        Ok(())
    }

    /// The detail control the fusion runs at: the reader's, or the model's default.
    pub fn detail_or_default(&self) -> f32 {
        self.detail.unwrap_or_else(|| {
            let task = self.job.as_ref().map_or("", |j| j.task);
            shipped::default_detail(task)
        })
    }

    /// The network's inputs for the two studies at the chosen detail, starting with the
    /// axial slice in view; any running job is cancelled.
    fn fusion_inputs(&mut self) -> Result<FusionInputs, String> {
        let Some(b) = self.pair.b.clone() else {
            return Err("fusion needs two studies".into());
        };
        if let Some(job) = &self.job {
            job.cancel();
        }
        let window = |side: Side| {
            self.layer(LayerId::Study(side))
                .map(|l| l.default_window)
                .unwrap_or_else(|| {
                    Window::default_for(if side == Side::A { &self.pair.a } else { &b })
                })
        };
        let mut inputs = FusionInputs::new((&self.pair.a, window(Side::A)), (&b, window(Side::B)));
        inputs.detail = self
            .detail
            .unwrap_or_else(|| shipped::default_detail(inputs.task));
        inputs.first_slice = self.slice(Orientation::Axial);
        Ok(inputs)
    }

    /// Moves the fusion's front to the axial slice in view (scrolling, or a click in another
    /// plane, moves it), then copies finished batches into the output layers. Returns true
    /// when anything changed.
    pub fn poll_fusion(&mut self) -> bool {
        let in_view = self.slice(Orientation::Axial);
        let Some(job) = &mut self.job else {
            return false;
        };
        job.set_focus(in_view);
        let batches = job.poll();
        let swapped = job.swapped;
        let changed = !batches.is_empty();
        for (first, maps) in batches {
            let (ours, theirs) = if swapped {
                (Side::B, Side::A)
            } else {
                (Side::A, Side::B)
            };
            let mut fill = |id: LayerId, values: &[f32]| {
                if let Some(layer) = self.layers.iter_mut().find(|l| l.id == id) {
                    layer.fill_slices(first, values);
                }
            };
            fill(LayerId::Fused, &maps.fused);
            for s in 0..maps.alpha.len() {
                fill(LayerId::Reliability(ours, s), &maps.reliability_a[s]);
                fill(LayerId::Reliability(theirs, s), &maps.reliability_b[s]);
                fill(LayerId::Alpha(s), &maps.alpha[s]);
            }
        }
        changed
    }

    /// Bytes of voxel data held on the host.
    pub fn held_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.volume.byte_size()).sum()
    }
}
