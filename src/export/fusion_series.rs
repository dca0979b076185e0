//! A fusion result written as derived DICOM series on the reference grid: the fused image
//! and, if asked, each reliability and mixer map as a series of its own, all in the
//! reference study (or anonymised), each referencing both source series. All or nothing:
//! existing outputs are refused before anything is written, and a failure or cancel removes
//! what this export wrote.

use std::path::{Path, PathBuf};

use super::derived::Derivation;
use super::dicom_series::{ExportError, write_series_with_progress};
use super::displayed_series::{DisplayedSeries, write_displayed};
use super::series_options::SeriesOptions;
use super::uid::{new_secret, new_uid};
use crate::io::atomic::WrittenFiles;
use crate::volume::{Modality, Volume};

/// One series to write: its sub-folder name, description and values.
pub struct OutputSeries<'a> {
    pub folder: String,
    /// SeriesDescription (cut to 64 characters).
    pub description: String,
    /// DerivationDescription: how it was made.
    pub derivation: String,
    pub volume: &'a Volume,
}

/// What to write and how.
pub struct FusionExport<'a> {
    /// The study whose grid, patient, study and frame of reference the outputs share.
    pub reference: &'a Volume,
    /// The two fused studies (their identities are referenced).
    pub sources: [&'a Volume; 2],
    pub outputs: Vec<OutputSeries<'a>>,
    /// The fusion as displayed (RGB secondary captures), when asked for.
    pub displayed: Option<DisplayedSeries<'a>>,
    /// Replace the patient's identity and remap every UID.
    pub anonymize: bool,
    pub overwrite: bool,
}

/// What an output series' values mean (they are no HU, SUV or scanner signal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    Fused,
    /// Reliability of study `A` or `B` at a scale.
    Reliability {
        study: char,
        scale: usize,
    },
    Alpha {
        scale: usize,
    },
    /// The fusion pane's colours.
    Displayed,
}

impl Meaning {
    /// The sentence DerivationDescription ends with.
    pub fn text(self) -> String {
        match self {
            Self::Fused => "values 0 to 1: fused intensity (0 dark, 1 bright), no physical \
                            unit"
                .into(),
            Self::Reliability { study, scale } => format!(
                "values 0 to 1: how far study {study} is trusted at scale {scale} (1: {study} \
                 alone, 0: the other study alone), no physical unit"
            ),
            Self::Alpha { scale } => format!(
                "values 0 to 1: the mixer's weight at scale {scale} (1: wavelet expert, 0: \
                 spatial expert), no physical unit"
            ),
            Self::Displayed => "RGB display colours (window, colour maps, opacities and \
                                threshold as on screen), not measurements"
                .into(),
        }
    }
}

/// The standard text of a fusion's SeriesDescription and DerivationDescription, the latter
/// ending with what the values mean.
pub fn describe(
    what: &str,
    sources: [&Volume; 2],
    model: &str,
    meaning: Meaning,
) -> (String, String) {
    let name = |v: &Volume| {
        let d = &v.identity.series_description;
        if d.is_empty() {
            v.modality.to_string()
        } else {
            format!("{} \"{}\"", v.modality, d)
        }
    };
    let short = format!(
        "W-DUALMINE {what} {}+{}",
        sources[0].modality, sources[1].modality
    );
    let long = format!(
        "W-DUALMINE {what} ({model}) of {} (series {}) and {} (series {}), on the grid of the \
         first (the second resampled trilinearly); {}",
        name(sources[0]),
        sources[0].identity.series_instance_uid,
        name(sources[1]),
        sources[1].identity.series_instance_uid,
        meaning.text(),
    );
    (short.chars().take(64).collect(), long)
}

/// Writes every output series under `folder`, then the pictures as displayed;
/// `progress(files, total)` returning false cancels. Returns the files written.
pub fn write_fusion(
    export: &FusionExport<'_>,
    folder: &Path,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<PathBuf>, ExportError> {
    let secret = new_secret();
    let slices = export.reference.geometry.dims[2];
    let pictures = export.displayed.as_ref().map_or(0, |d| d.count);
    let total = slices * export.outputs.len() + pictures;
    if !export.overwrite {
        let folders = export
            .outputs
            .iter()
            .map(|o| &o.folder)
            .chain(export.displayed.as_ref().map(|d| &d.folder));
        for name in folders {
            let first = folder.join(name).join("IM000001.dcm");
            if first.exists() {
                return Err(ExportError::Exists { path: first });
            }
        }
    }
    let mut written = WrittenFiles::new();
    for (index, output) in export.outputs.iter().enumerate() {
        let options = series_options(
            export,
            index,
            &output.description,
            &output.derivation,
            secret,
        );
        // Stored as the reference's modality (CT or MR image objects, the values' meaning
        // in the derivation and, for CT, a rescale type that is not HU), else secondary
        // capture.
        let mut volume = output.volume.clone();
        volume.modality = match &export.reference.modality {
            Modality::Ct => Modality::Ct,
            Modality::Mr => Modality::Mr,
            _ => Modality::Other("OT".into()),
        };
        let done_before = written.len();
        let files = write_series_with_progress(
            &volume,
            &folder.join(&output.folder),
            &options,
            &mut |done, _| progress(done_before + done, total),
        )?;
        // The series is complete; it is removed again if a later one fails.
        let mut part = WrittenFiles::new();
        files.into_iter().for_each(|f| part.push(f));
        written.absorb(part);
    }
    if let Some(displayed) = &export.displayed {
        let index = export.outputs.len();
        let options = series_options(
            export,
            index,
            &displayed.description,
            &displayed.derivation,
            secret,
        );
        let done_before = written.len();
        let files = write_displayed(
            displayed,
            &options,
            &folder.join(&displayed.folder),
            &mut |done, _| progress(done_before + done, total),
        )?;
        let mut part = WrittenFiles::new();
        files.into_iter().for_each(|f| part.push(f));
        written.absorb(part);
    }
    Ok(written.keep())
}

/// The identity of output series number `index`: in the reference's study and frame of
/// reference (new UIDs where it has none), derived from both sources, anonymised when asked.
fn series_options(
    export: &FusionExport<'_>,
    index: usize,
    description: &str,
    derivation: &str,
    secret: u128,
) -> SeriesOptions {
    let identity = &export.reference.identity;
    let mut options = SeriesOptions {
        study_instance_uid: identity.study_instance_uid.clone(),
        series_instance_uid: new_uid(),
        frame_of_reference_uid: identity.frame_of_reference_uid.clone(),
        patient_name: identity.patient_name.clone(),
        patient_id: identity.patient_id.clone(),
        study_date: identity.study_date.clone(),
        series_number: 900 + index as i32,
        series_description: description.chars().take(64).collect(),
        pet: None,
        nm_multi_frame: false,
        overwrite: export.overwrite,
        derivation: Some(Derivation {
            description: derivation.to_string(),
            sources: export.sources.iter().map(|s| s.identity.clone()).collect(),
        }),
    };
    for uid in [
        &mut options.study_instance_uid,
        &mut options.frame_of_reference_uid,
    ] {
        if uid.is_empty() {
            *uid = new_uid();
        }
    }
    if options.study_date.is_empty() {
        options.study_date = "20260101".into();
    }
    if export.anonymize {
        options.anonymize(secret);
    }
    options
}
