//! Opening studies for the viewer: loading off the UI thread, offering a series picker for
//! folders with several series, and pairing two studies on one grid.
//!
//! Pairing: the first anatomical study (CT or MR; else the first study) is the reference
//! grid, stored along the patient axes so that axial, coronal and sagittal planes are plain
//! voxel planes; the other study is resampled onto it through patient coordinates. Studies
//! in different frames of reference are still placed by patient coordinates (never by slice
//! index), and the pair carries a warning saying those coordinates do not correspond.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use crate::io::dicom::SeriesSummary;
use crate::io::{self, LoadError};
use crate::volume::colour::luminance;
use crate::volume::reorient::{self, AxisMap};
use crate::volume::resample::{Interpolation, background_of, resample};
use crate::volume::{Modality, Volume};

/// A study to open.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A study on disk: a DICOM folder or file, NIfTI or PNG.
    Path(PathBuf),
    /// Series number `n` (1-based, scan order) of a DICOM folder holding several.
    Series(PathBuf, usize),
}

impl Source {
    pub fn path(&self) -> &PathBuf {
        match self {
            Self::Path(path) | Self::Series(path, _) => path,
        }
    }
}

/// What the loading thread reports.
pub enum LoadOutcome {
    /// Every source loaded, in order.
    Loaded(Vec<Volume>),
    /// Source `index` is a folder with several series: the user picks one.
    NeedsChoice {
        index: usize,
        series: Vec<SeriesSummary>,
    },
    Failed(String),
}

/// Loads `sources` on a background thread.
pub fn load_in_background(sources: Vec<Source>) -> Result<Receiver<LoadOutcome>, String> {
    let (sender, receiver) = sync_channel(1);
    std::thread::Builder::new()
        .name("load studies".into())
        .spawn(move || {
            let _ = sender.send(load_all(&sources));
        })
        .map_err(|e| format!("cannot start loading: {e}"))?;
    Ok(receiver)
}

fn load_all(sources: &[Source]) -> LoadOutcome {
    let mut volumes = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        let result = match source {
            Source::Path(path) => io::load(path, None),
            Source::Series(path, n) => io::load(path, Some(*n)),
        };
        match result {
            Ok(volume) => volumes.push(volume),
            Err(LoadError::SeveralSeries { path, .. }) => {
                return match io::dicom::scan(&path) {
                    Ok(report) => LoadOutcome::NeedsChoice {
                        index,
                        series: report.series.iter().map(|s| s.summary()).collect(),
                    },
                    Err(e) => LoadOutcome::Failed(format!("{}: {e}", path.display())),
                };
            }
            Err(e) => return LoadOutcome::Failed(format!("{}: {e}", source.path().display())),
        }
    }
    LoadOutcome::Loaded(volumes)
}

/// Which of the two studies a layer or map belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// One or two studies on one grid (the reference study's, along the patient axes).
pub struct StudyPair {
    pub a: Arc<Volume>,
    pub b: Option<Arc<Volume>>,
    /// Which study gave the grid.
    pub reference: Side,
    /// Set when the studies are in different frames of reference.
    pub frame_warning: Option<String>,
    /// Things the user should know (reorientation, colour dropped, loader warnings).
    pub notes: Vec<String>,
    /// The other (non-reference) study as loaded, before resampling: what registration
    /// moves.
    pub original_other: Option<Arc<Volume>>,
}

impl StudyPair {
    /// The grid both studies are on.
    pub fn dims(&self) -> [usize; 3] {
        self.a.geometry.dims
    }

    pub fn study(&self, side: Side) -> Option<&Arc<Volume>> {
        match side {
            Side::A => Some(&self.a),
            Side::B => self.b.as_ref(),
        }
    }
}

/// Puts one or two loaded studies on one grid (see the module documentation).
pub fn pair(mut volumes: Vec<Volume>) -> Result<StudyPair, String> {
    if volumes.is_empty() || volumes.len() > 2 {
        return Err(format!(
            "the viewer shows one or two studies ({} given)",
            volumes.len()
        ));
    }
    let mut notes = Vec::new();
    for v in &mut volumes {
        notes.extend(v.warnings.iter().cloned());
        if v.channels == 3 {
            let (y, _) = luminance(&v.data, 3);
            v.data = y.into_iter().map(|y| y * 255.0).collect();
            v.channels = 1;
            notes.push(format!("{}: colour shown as its luminance", v.modality));
        } else if v.channels != 1 {
            return Err(format!("a study has {} channels per voxel", v.channels));
        }
    }
    let anatomical = |v: &Volume| matches!(v.modality, Modality::Ct | Modality::Mr);
    let reference_index = volumes.iter().position(anatomical).unwrap_or(0);
    let mut reference = volumes[reference_index].clone();
    match AxisMap::to_patient_axes(&reference.geometry) {
        Some(map) if map != AxisMap::IDENTITY => reference = reorient::apply(&reference, map),
        Some(_) => {}
        None => notes.push(
            "the reference study is oblique: views follow its own axes, not the patient's".into(),
        ),
    }
    let mut placed = Vec::with_capacity(volumes.len());
    let mut frame_warning = None;
    let mut original_other = None;
    for (index, volume) in volumes.into_iter().enumerate() {
        if index == reference_index {
            placed.push(Arc::new(reference.clone()));
            continue;
        }
        let (ours, theirs) = (
            &reference.identity.frame_of_reference_uid,
            &volume.identity.frame_of_reference_uid,
        );
        if !ours.is_empty() && !theirs.is_empty() && ours != theirs {
            frame_warning = Some(format!(
                "The studies have different frames of reference ({theirs} and {ours}): they \
                 are placed by patient coordinates, which do not correspond until the studies \
                 are registered. Fusion is off until you ask for it."
            ));
        }
        let moved = resample(
            &volume,
            &reference.geometry,
            Interpolation::Linear,
            background_of(&volume),
        )
        .map_err(|e| e.to_string())?;
        placed.push(Arc::new(moved));
        original_other = Some(Arc::new(volume));
    }
    let mut placed = placed.into_iter();
    let a = placed.next().ok_or("no study")?;
    Ok(StudyPair {
        a,
        b: placed.next(),
        reference: if reference_index == 0 {
            Side::A
        } else {
            Side::B
        },
        frame_warning,
        notes,
        original_other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom;
    use crate::volume::Units;

    fn studies() -> (Volume, Volume) {
        let fine = phantom::head_grid(32, 8, 6.0, 21.0);
        let coarse = phantom::head_grid(16, 4, 12.0, 42.0);
        (
            phantom::pet_suv_volume(&coarse),
            phantom::mr_t1_volume(&fine),
        )
    }

    #[test]
    fn the_anatomical_study_gives_the_grid() {
        let (pet, mr) = studies();
        let pair = pair(vec![pet, mr.clone()]).expect("pairs");
        assert_eq!(pair.reference, Side::B);
        assert_eq!(pair.dims(), mr.geometry.dims);
        assert_eq!(pair.a.units, Units::SuvBw);
        assert!(pair.frame_warning.is_none());
    }

    #[test]
    fn different_frames_of_reference_are_flagged() {
        let (mut pet, mut mr) = studies();
        pet.identity.frame_of_reference_uid = "1.2.3".into();
        mr.identity.frame_of_reference_uid = "1.2.4".into();
        let pair = pair(vec![mr, pet]).expect("pairs");
        let warning = pair.frame_warning.expect("warned");
        assert!(warning.contains("1.2.3") && warning.contains("registered"));
    }

    #[test]
    fn three_studies_are_refused() {
        let (pet, mr) = studies();
        assert!(pair(vec![pet.clone(), mr, pet]).is_err());
    }
}
