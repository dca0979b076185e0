//! Rigid and affine transforms as readable text files (`dualmine register` writes them, `resample`,
//! `fuse --transform` and the viewer read them):
//!
//! ```text
//! # dualmine transform: fixed patient position (LPS mm) -> moving patient position
//! # p_moving = R * K * (p_fixed - centre) + centre + translation,  R = Rz * Ry * Rx
//! # K = [[sx, xy, xz], [0, sy, yz], [0, 0, sz]] (scale, shear; identity when absent)
//! fixed: MR "T1" (series 1.2.3)
//! moving: PT "PET" (series 1.2.4)
//! metric: mattes_mutual_information 0.5933
//! angles_deg: 1.0156 -0.5156 0.8281
//! translation_mm: -0.7839 -0.8239 -0.2877
//! centre_mm: 80.6792 9.1173 -774.3700
//! matrix: r00 r01 r02 t0 r10 r11 r12 t1 r20 r21 r22 t2
//! ```
//! An affine transform adds `scale: sx sy sz` and `shear: xy xz yz`. Only the angles,
//! translation, centre, scale and shear are read back; the rest is for people.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::atomic::write_atomically;
use crate::volume::transform::Transform;

/// Why a transform file could not be read or written.
#[derive(Debug, Error)]
pub enum TransformError {
    #[error("cannot read the transform: {source} ({})", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the transform: {source} ({})", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the transform file lacks \"{field}: x y z\" ({})", path.display())]
    Missing { field: &'static str, path: PathBuf },
    #[error("the transform file's \"{field}\" is not three finite numbers ({})", path.display())]
    Invalid { field: &'static str, path: PathBuf },
}

/// What a transform file says besides the transform.
#[derive(Clone, Debug, Default)]
pub struct TransformNotes {
    pub fixed: String,
    pub moving: String,
    /// Mattes mutual information at the solution, when known.
    pub metric: Option<f64>,
}

/// The file's text.
pub fn to_text(transform: &Transform, notes: &TransformNotes) -> String {
    let three = |v: [f64; 3]| format!("{:.6} {:.6} {:.6}", v[0], v[1], v[2]);
    let m = transform.matrix();
    let matrix: Vec<String> = (0..3)
        .flat_map(|r| (0..4).map(move |c| (r, c)))
        .map(|(r, c)| format!("{:.9}", m[r][c]))
        .collect();
    let mut text = String::from(
        "# dualmine transform: fixed patient position (LPS mm) -> moving patient position\n\
         # p_moving = R * K * (p_fixed - centre) + centre + translation,  R = Rz * Ry * Rx\n\
         # K = [[sx, xy, xz], [0, sy, yz], [0, 0, sz]] (scale, shear; identity when absent)\n",
    );
    text += &format!("fixed: {}\nmoving: {}\n", notes.fixed, notes.moving);
    if let Some(metric) = notes.metric {
        text += &format!("metric: mattes_mutual_information {metric:.6}\n");
    }
    text += &format!(
        "angles_deg: {}\ntranslation_mm: {}\ncentre_mm: {}\n",
        three(transform.angles_deg),
        three(transform.translation_mm),
        three(transform.centre_mm),
    );
    if !transform.is_rigid() {
        text += &format!(
            "scale: {}\nshear: {}\n",
            three(transform.scale),
            three(transform.shear)
        );
    }
    text += &format!("matrix: {}\n", matrix.join(" "));
    text
}

/// Writes `transform` to `path` (atomically; an existing file only with `overwrite`).
pub fn write(
    transform: &Transform,
    notes: &TransformNotes,
    path: &Path,
    overwrite: bool,
) -> Result<(), TransformError> {
    let text = to_text(transform, notes);
    write_atomically(path, overwrite, |out| out.write_all(text.as_bytes())).map_err(|source| {
        TransformError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Reads a transform file.
pub fn read(path: &Path) -> Result<(Transform, TransformNotes), TransformError> {
    let text = std::fs::read_to_string(path).map_err(|source| TransformError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses a transform file's text (`path` only names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<(Transform, TransformNotes), TransformError> {
    let field = |name: &'static str| -> Option<&str> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let optional = |name: &'static str| -> Result<Option<[f64; 3]>, TransformError> {
        let Some(value) = field(name) else {
            return Ok(None);
        };
        let numbers: Vec<f64> = value
            .split_whitespace()
            .map(str::parse::<f64>)
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        match numbers[..] {
            [a, b, c] if [a, b, c].iter().all(|v| v.is_finite()) => Ok(Some([a, b, c])),
            _ => Err(TransformError::Invalid {
                field: name,
                path: path.to_path_buf(),
            }),
        }
    };
    let three = |name: &'static str| -> Result<[f64; 3], TransformError> {
        optional(name)?.ok_or_else(|| TransformError::Missing {
            field: name,
            path: path.to_path_buf(),
        })
    };
    let scale = optional("scale")?.unwrap_or([1.0; 3]);
    if scale.iter().any(|s| *s <= 0.0) {
        return Err(TransformError::Invalid {
            field: "scale",
            path: path.to_path_buf(),
        });
    }
    let transform = Transform {
        angles_deg: three("angles_deg")?,
        translation_mm: three("translation_mm")?,
        centre_mm: three("centre_mm")?,
        scale,
        shear: optional("shear")?.unwrap_or([0.0; 3]),
    };
    let notes = TransformNotes {
        fixed: field("fixed").unwrap_or_default().to_string(),
        moving: field("moving").unwrap_or_default().to_string(),
        metric: field("metric")
            .and_then(|m| m.split_whitespace().last())
            .and_then(|m| m.parse().ok()),
    };
    Ok((transform, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_survive_the_text_format() {
        let t = Transform::rigid(
            [1.5, -2.25, 10.0],
            [-3.0, 4.125, 0.5],
            [10.0, -20.0, -774.37],
        );
        let notes = TransformNotes {
            fixed: "MR".into(),
            moving: "PT".into(),
            metric: Some(0.59),
        };
        let (back, read_notes) = parse(&to_text(&t, &notes), Path::new("t.txt")).expect("parses");
        assert_eq!(back, t);
        assert_eq!(read_notes.metric, Some(0.59));
        assert_eq!(read_notes.moving, "PT");
        let broken = to_text(&t, &notes).replace("angles_deg: 1.5", "angles_deg: x");
        assert!(matches!(
            parse(&broken, Path::new("t.txt")),
            Err(TransformError::Invalid {
                field: "angles_deg",
                ..
            })
        ));
        assert!(matches!(
            parse("fixed: a\n", Path::new("t.txt")),
            Err(TransformError::Missing { .. })
        ));
        // Affine: scales and shears are written and read back; rigid files have neither.
        assert!(!to_text(&t, &notes).contains("scale:"));
        let affine = Transform {
            scale: [1.05, 0.5, 2.0],
            shear: [0.125, -0.0625, 0.0],
            ..t
        };
        let (back, _) = parse(&to_text(&affine, &notes), Path::new("t.txt")).expect("parses");
        assert_eq!(back, affine);
        let singular = to_text(&affine, &notes).replace("scale: 1.05", "scale: 0");
        assert!(matches!(
            parse(&singular, Path::new("t.txt")),
            Err(TransformError::Invalid { field: "scale", .. })
        ));
    }
}
