//! The trained weights that ship inside the program (`assets/`), one model per pairing
//! (CT, PET or SPECT with MRI — the loss weights that reach the bar differ by task, see
//! `assets/MODEL_CARD.md`), so `fuse` works without a weights file.

use burn::tensor::Device;

use super::model::{DualMine, DualMineConfig};
use super::weights::{WeightsError, load_static};
use crate::volume::{Modality, Volume};

/// The configuration the shipped weights were trained for.
pub const CONFIG: &str = "tiny";

/// The pairings a shipped model exists for, by task name.
pub const TASKS: [&str; 3] = ["ct-mri", "pet-mri", "spect-mri"];

/// The shipped model for two studies by their modalities: a PET makes it `pet-mri`, an NM
/// (SPECT) study `spect-mri`, anything else `ct-mri`. `None` for a pair of colour images
/// (PNG, no modality): their pseudo-colour can be PET or SPECT, which only the user knows.
pub fn task_for(studies: [&Volume; 2]) -> Option<&'static str> {
    if studies.iter().any(|s| s.modality == Modality::Pet) {
        Some("pet-mri")
    } else if studies.iter().any(|s| s.modality == Modality::Nm) {
        Some("spect-mri")
    } else if studies.iter().any(|s| s.channels == 3) {
        None
    } else {
        Some("ct-mri")
    }
}

/// Burnpack's tensors are read in place, so the bytes must sit as aligned as a file buffer.
#[repr(C, align(256))]
struct Aligned<Bytes: ?Sized>(Bytes);

static CT_MRI: &Aligned<[u8]> = &Aligned(*include_bytes!("../../assets/wdualmine-tiny-ct-mri.bpk"));
static PET_MRI: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../assets/wdualmine-tiny-pet-mri.bpk"));
static SPECT_MRI: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../assets/wdualmine-tiny-spect-mri.bpk"));

/// The shipped network for `task` (one of [`TASKS`]) on `device`.
pub fn load(task: &str, device: &Device) -> Result<DualMine, WeightsError> {
    let bytes = match task {
        "ct-mri" => &CT_MRI.0,
        "pet-mri" => &PET_MRI.0,
        "spect-mri" => &SPECT_MRI.0,
        other => {
            return Err(WeightsError::Missing {
                path: format!("built-in weights for {other:?} (ct-mri, pet-mri, spect-mri)").into(),
            });
        }
    };
    load_static(
        &DualMineConfig::named(CONFIG),
        bytes,
        &format!("built-in wdualmine-{CONFIG}-{task}.bpk"),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

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
