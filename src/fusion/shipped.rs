//! The trained weights that ship inside the program (`assets/`), one model per pairing
//! (CT, PET or SPECT with MRI, and PET with CT — the loss weights that reach the bar differ
//! by task, see `assets/MODEL_CARD.md`), so `fuse` works without a weights file.

use burn::tensor::Device;

use super::network::model::{DualMine, DualMineConfig};
use super::network::weights::{WeightsError, load_static};
use crate::volume::{BodyPart, Modality, Volume};

/// The configuration of the shipped weights: the `tiny` network trained per task, with the
/// local part that the detail control steers (`network::local`, set by `dualmine set-local`).
pub const CONFIG: &str = "tiny-local";

/// The pairings a shipped model exists for, by task name. `pet-mr-body` is a PET with an MR
/// of the body: it runs the `pet-ct` weights (trained on real body PET/CT slices), which keep
/// a lesion's uptake where the atlas-trained `pet-mri` model (brain pairs) turns a tumour that
/// is hot on the PET and dark on the MR mid-grey (`assets/MODEL_CARD.md`, "PET–MR of the body").
pub const TASKS: [&str; 5] = ["ct-mri", "pet-mri", "spect-mri", "pet-ct", "pet-mr-body"];

/// The shipped model for two studies by their modalities: a PET with a CT (and no MR) makes
/// it `pet-ct`; a PET with an MR `pet-mr-body` when a study names a body part other than the
/// head (BodyPartExamined), else `pet-mri` (the atlas's brain pairs); an NM (SPECT) study
/// `spect-mri`, anything else `ct-mri`. `None` for a pair of colour images (PNG, no
/// modality): their pseudo-colour can be PET or SPECT, which only the user knows.
pub fn task_for(studies: [&Volume; 2]) -> Option<&'static str> {
    let has = |modality: Modality| studies.iter().any(|s| s.modality == modality);
    if has(Modality::Pet) && has(Modality::Ct) && !has(Modality::Mr) {
        Some("pet-ct")
    } else if has(Modality::Pet) {
        Some(if of_the_body(studies) {
            "pet-mr-body"
        } else {
            "pet-mri"
        })
    } else if studies.iter().any(|s| s.modality == Modality::Nm) {
        Some("spect-mri")
    } else if studies.iter().any(|s| s.channels == 3) {
        None
    } else {
        Some("ct-mri")
    }
}

/// Whether the studies are of the body: one names a body part (BodyPartExamined) and none
/// names the head or brain. Unnamed studies are taken for the atlas's (the head).
fn of_the_body(studies: [&Volume; 2]) -> bool {
    let parts = studies.map(|s| s.identity.body_part());
    parts.contains(&BodyPart::Body) && !parts.contains(&BodyPart::Head)
}

/// Whether two studies must swap to be in the order the shipped models were trained on:
/// A is the CT, PET or SPECT and B the MR; with no MR, A is the PET or SPECT and B the CT.
pub fn swapped_for_network(studies: [&Volume; 2]) -> bool {
    let rank = |v: &Volume| match v.modality {
        Modality::Mr => 2,
        Modality::Ct => 1,
        _ => 0,
    };
    rank(studies[0]) > rank(studies[1])
}

/// Burnpack's tensors are read in place, so the bytes must sit as aligned as a file buffer.
#[repr(C, align(256))]
struct Aligned<Bytes: ?Sized>(Bytes);

static CT_MRI: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../assets/wdualmine-tiny-local-ct-mri.bpk"
));
static PET_MRI: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../assets/wdualmine-tiny-local-pet-mri.bpk"
));
static SPECT_MRI: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../assets/wdualmine-tiny-local-spect-mri.bpk"
));
static PET_CT: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../assets/wdualmine-tiny-local-pet-ct.bpk"
));

/// The shipped network for `task` (one of [`TASKS`]) on `device`.
pub fn load(task: &str, device: &Device) -> Result<DualMine, WeightsError> {
    load_static(
        &DualMineConfig::named(CONFIG),
        bytes_of(task)?,
        &format!("built-in wdualmine-{CONFIG}-{task}.bpk"),
        device,
    )
}

/// The detail control d that the shipped model of `task` runs with unless the reader moves
/// it (0 faithful … 1 most local), 0 for a task without a shipped model. Chosen on the
/// validation data (`assets/MODEL_CARD.md`, "Detail control"): for the atlas tasks the d of
/// the highest validation SSIM among d = 0, 0.25, 0.5, 0.75, 1 (the structure of both
/// studies kept best); for PET the d at which the real lesion of the held-out study STS_002
/// keeps the most uptake contrast (`lesion.py`'s C50) — PET–CT 0.5; PET–MR of the body and
/// PET–MRI 0, as their C50 only falls with d (the maps trust the sharper MR inside a flat hot
/// lesion).
pub fn default_detail(task: &str) -> f32 {
    match task {
        "ct-mri" => 0.25,
        "pet-ct" => 0.5,
        "spect-mri" => 0.75,
        _ => 0.0,
    }
}

/// The built-in weights of `task`.
fn bytes_of(task: &str) -> Result<&'static [u8], WeightsError> {
    Ok(match task {
        "ct-mri" => &CT_MRI.0,
        "pet-mri" => &PET_MRI.0,
        "spect-mri" => &SPECT_MRI.0,
        "pet-ct" | "pet-mr-body" => &PET_CT.0,
        other => {
            return Err(WeightsError::Missing {
                path: format!("built-in weights for {other:?} ({})", TASKS.join(", ")).into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn modalities_pick_the_model_and_the_order() {
        use crate::volume::{Geometry, Units};
        let study = |modality: Modality| {
            Volume::new(
                Geometry::axis_aligned([2, 2, 1], [1.0; 3], [0.0; 3]),
                vec![0.0; 4],
            )
            .expect("valid")
            .with_kind(modality, Units::Signal)
        };
        let (ct, mr, pet, nm) = (
            study(Modality::Ct),
            study(Modality::Mr),
            study(Modality::Pet),
            study(Modality::Nm),
        );
        assert_eq!(task_for([&ct, &pet]), Some("pet-ct"));
        assert_eq!(task_for([&mr, &pet]), Some("pet-mri"));
        // A named body part other than the head: the body PET model.
        let of = |mut v: Volume, part: &str| {
            v.identity.body_part_examined = part.into();
            v
        };
        let (leg_mr, leg_pet) = (of(mr.clone(), "EXTREMITY"), of(pet.clone(), "EXTREMITY"));
        assert_eq!(task_for([&leg_mr, &leg_pet]), Some("pet-mr-body"));
        assert_eq!(task_for([&leg_mr, &pet]), Some("pet-mr-body"));
        assert_eq!(
            task_for([&of(mr.clone(), "HEAD"), &leg_pet]),
            Some("pet-mri")
        );
        assert_eq!(task_for([&of(mr.clone(), "brain"), &pet]), Some("pet-mri"));
        assert_eq!(task_for([&ct, &leg_pet]), Some("pet-ct"));
        assert_eq!(default_detail("pet-mr-body"), 0.0);
        assert_eq!(task_for([&nm, &mr]), Some("spect-mri"));
        assert_eq!(task_for([&ct, &mr]), Some("ct-mri"));
        // A is the functional study or the CT; B the MR, or the CT beside a PET.
        assert!(swapped_for_network([&ct, &pet]));
        assert!(!swapped_for_network([&pet, &ct]));
        assert!(swapped_for_network([&mr, &pet]));
        assert!(swapped_for_network([&mr, &ct]));
        assert!(!swapped_for_network([&ct, &mr]));
    }

    #[test]
    fn shipped_weights_load_and_are_trained() {
        let device = Device::flex();
        let a = Tensor::<4>::random([1, 1, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
        let b = Tensor::<4>::random([1, 1, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
        for task in TASKS {
            let model = load(task, &device).expect("the built-in weights load");
            let fused = model.forward(a.clone(), b.clone()).fused;
            // An untrained network gives exactly the average; trained weights do not.
            let difference = (fused - (a.clone() + b.clone()) * 0.5).abs().max();
            let difference = difference.into_data().try_to_vec::<f32>().expect("f32")[0];
            assert!(difference > 1e-3, "{task}: {difference}");
        }
        assert!(matches!(
            load("xray-mri", &device),
            Err(WeightsError::Missing { .. })
        ));
    }
}
