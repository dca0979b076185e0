//! The SOP classes and transfer syntaxes this client negotiates, and the presentation
//! contexts each operation proposes.

pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Explicit, then implicit VR little endian: what every SCP accepts.
pub fn native_syntaxes() -> Vec<&'static str> {
    vec![EXPLICIT_VR_LE, IMPLICIT_VR_LE]
}

/// The storage classes we accept during a C-GET: the images this viewer reads, plus the
/// objects that travel with them (registrations, segmentations, structure sets).
pub const STORAGE_CLASSES: [&str; 18] = [
    "1.2.840.10008.5.1.4.1.1.2",     // CT
    "1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT
    "1.2.840.10008.5.1.4.1.1.2.2",   // Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",     // MR
    "1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.4",   // Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",   // PET
    "1.2.840.10008.5.1.4.1.1.130",   // Enhanced PET
    "1.2.840.10008.5.1.4.1.1.128.1", // Legacy Converted Enhanced PET
    "1.2.840.10008.5.1.4.1.1.20",    // Nuclear Medicine (SPECT)
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.2",   // Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",   // Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",   // Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.66.1",  // Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.3",  // Deformable Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.4",  // Segmentation
    "1.2.840.10008.5.1.4.1.1.481.3", // RT Structure Set
];

/// Transfer-syntax groups proposed for each storage class during a C-GET, one presentation
/// context each, so that the server can send every instance as it stores it (no
/// transcoding): native first, then the lossless and lossy compressions a PACS keeps.
const RECEIVE_SYNTAX_GROUPS: [&[&str]; 6] = [
    &[EXPLICIT_VR_LE, IMPLICIT_VR_LE],
    &["1.2.840.10008.1.2.4.70"], // JPEG Lossless SV1
    &["1.2.840.10008.1.2.4.80"], // JPEG-LS Lossless
    &["1.2.840.10008.1.2.4.90"], // JPEG 2000 Lossless
    &[
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.81",
    ], // lossy
    &["1.2.840.10008.1.2.5"],    // RLE Lossless
];

/// The contexts of a retrieve: `retrieve_model` (C-GET or C-MOVE) plus, for C-GET, every
/// storage class in every syntax group (6 × 18 + 1 = 109 of the 128 a request may hold).
pub fn retrieve_contexts(
    retrieve_model: &'static str,
    with_storage: bool,
) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut contexts = vec![(retrieve_model, native_syntaxes())];
    if with_storage {
        for class in STORAGE_CLASSES {
            for group in RECEIVE_SYNTAX_GROUPS {
                contexts.push((class, group.to_vec()));
            }
        }
    }
    contexts
}

/// Every syntax group for one storage class (what our C-MOVE storage SCP accepts).
pub fn receive_syntaxes() -> impl Iterator<Item = &'static str> {
    RECEIVE_SYNTAX_GROUPS
        .iter()
        .flat_map(|group| group.iter().copied())
}

/// The contexts of a store of files given as (SOP class, transfer syntax): per class, one
/// context per syntax its files use, plus a native one to fall back on.
pub fn store_contexts(files: impl Iterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut pairs: Vec<(String, String)> = files.collect();
    pairs.sort();
    pairs.dedup();
    let mut contexts: Vec<(String, Vec<String>)> = Vec::new();
    for (class, syntax) in &pairs {
        if syntax != EXPLICIT_VR_LE && syntax != IMPLICIT_VR_LE {
            contexts.push((class.clone(), vec![syntax.clone()]));
        }
    }
    let mut classes: Vec<&String> = pairs.iter().map(|(class, _)| class).collect();
    classes.dedup();
    for class in classes {
        contexts.push((
            class.clone(),
            native_syntaxes().into_iter().map(String::from).collect(),
        ));
    }
    contexts
}

/// Whether `syntax` is uncompressed little endian (the two every SCP accepts).
pub fn is_native(syntax: &str) -> bool {
    syntax == EXPLICIT_VR_LE || syntax == IMPLICIT_VR_LE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retrieve_fits_in_one_association_request() {
        let contexts = retrieve_contexts(STUDY_ROOT_GET, true);
        assert!(contexts.len() <= 128, "{} contexts", contexts.len());
    }

    #[test]
    fn a_compressed_store_keeps_its_syntax_and_a_native_fallback() {
        let contexts = store_contexts(
            [
                ("1.2.3".to_string(), "1.2.840.10008.1.2.4.90".to_string()),
                ("1.2.3".to_string(), EXPLICIT_VR_LE.to_string()),
            ]
            .into_iter(),
        );
        assert_eq!(contexts.len(), 2);
        assert_eq!(contexts[0].1, vec!["1.2.840.10008.1.2.4.90".to_string()]);
        assert!(contexts[1].1.iter().any(|s| s == EXPLICIT_VR_LE));
    }
}
