//! NIfTI-1 volumes (`.nii`, `.nii.gz`): read into and write from [`Volume`]s.
//!
//! NIfTI stores world coordinates in RAS; volumes here are LPS, so the first two rows of
//! the affine change sign on the way in and out. Reading honours sform, then qform, then
//! pixdim, and the scl_slope/scl_inter scaling. Writing stores float32 (or RGB24) with both
//! sform and qform set, atomically.

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::LoadError;
use super::atomic::AtomicFile;
use crate::volume::geometry::{cross, dot, invert3};
use crate::volume::{Geometry, Modality, Units, Volume};

const HEADER_SIZE: usize = 348;
const DATA_OFFSET: usize = 352;
/// Largest voxel buffer accepted from a NIfTI file (4 GiB of samples).
const MAX_SAMPLES: u64 = 1 << 30;

/// Reads a NIfTI-1 file (gzip-compressed or not). A 4-D file gives its first volume.
pub fn read(path: &Path) -> Result<Volume, LoadError> {
    let bad = |reason: String| LoadError::Nifti {
        reason,
        path: path.to_path_buf(),
    };
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut raw = Vec::new();
    let mut head = [0u8; 2];
    {
        use std::io::{Seek, SeekFrom};
        let mut f = &file;
        let _ = f.read(&mut head);
        f.seek(SeekFrom::Start(0)).map_err(|e| bad(e.to_string()))?;
    }
    let reader: Box<dyn Read> = if head == [0x1f, 0x8b] {
        Box::new(GzDecoder::new(&file))
    } else {
        Box::new(&file)
    };
    // Read the header first, then at most the bytes it announces (no gzip bombs).
    let mut reader = reader.take(DATA_OFFSET as u64);
    reader
        .read_to_end(&mut raw)
        .map_err(|e| bad(format!("unreadable header: {e}")))?;
    if raw.len() < HEADER_SIZE {
        return Err(bad("file shorter than a NIfTI-1 header".into()));
    }
    let header = Header::parse(&raw).map_err(bad)?;
    let needed = header.samples()? * header.bytes_per_sample as u64;
    let data_start = header.vox_offset.max(HEADER_SIZE as u64);
    let mut reader = reader.into_inner();
    let mut rest = Vec::new();
    reader
        .by_ref()
        .take((data_start + needed).saturating_sub(raw.len() as u64))
        .read_to_end(&mut rest)
        .map_err(|e| bad(format!("unreadable data: {e}")))?;
    raw.extend_from_slice(&rest);
    let start = data_start as usize;
    if raw.len() < start + needed as usize {
        return Err(bad(format!(
            "data truncated: {} of {} bytes",
            raw.len().saturating_sub(start),
            needed
        )));
    }
    header
        .into_volume(&raw[start..start + needed as usize])
        .map_err(bad)
}

/// Writes `volume` as NIfTI-1 (gzip when the name ends in `.gz`), atomically.
pub fn write(volume: &Volume, path: &Path, overwrite: bool) -> Result<(), LoadError> {
    let mut writer = NiftiWriter::create(
        path,
        &volume.geometry,
        volume.channels,
        &describe(&volume.modality, &volume.units),
        overwrite,
    )?;
    writer.append(&volume.data)?;
    writer.finish()
}

/// The header's description field: what a volume holds, in what units.
pub fn describe(modality: &Modality, units: &Units) -> String {
    format!("dualmine {modality} {units}")
}

/// A NIfTI-1 volume (float32, or RGB24 for 3 channels) written slice by slice as its values
/// arrive (a fusion streamed to disk without holding the whole result), atomically: nothing
/// is at `path` until [`Self::finish`] has written every voxel; dropped before that, the
/// partial file is removed.
pub struct NiftiWriter {
    body: Body,
    path: std::path::PathBuf,
    channels: usize,
    expected: usize,
    written: usize,
}

enum Body {
    Plain(AtomicFile),
    Gzip(GzEncoder<AtomicFile>),
}

impl NiftiWriter {
    /// Starts a volume of `channels` (1 or 3) on `geometry` (gzip when the name ends in
    /// `.gz`); `description` goes into the header (see [`describe`]).
    pub fn create(
        path: &Path,
        geometry: &Geometry,
        channels: usize,
        description: &str,
        overwrite: bool,
    ) -> Result<Self, LoadError> {
        let gz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let file = AtomicFile::create(path, overwrite).map_err(|e| write_error(path, e))?;
        let body = if gz {
            Body::Gzip(GzEncoder::new(file, Compression::fast()))
        } else {
            Body::Plain(file)
        };
        let [nx, ny, nz] = geometry.dims;
        let mut writer = Self {
            body,
            path: path.to_path_buf(),
            channels: channels.max(1),
            expected: nx * ny * nz,
            written: 0,
        };
        let header = encode_header(geometry, channels, description);
        writer
            .out()
            .write_all(&header)
            .map_err(|e| write_error(path, e))?;
        Ok(writer)
    }

    fn out(&mut self) -> &mut dyn Write {
        match &mut self.body {
            Body::Plain(file) => file,
            Body::Gzip(encoder) => encoder,
        }
    }

    /// Appends the next values (x fastest, then rows, then slices; for RGB three per voxel).
    pub fn append(&mut self, values: &[f32]) -> Result<(), LoadError> {
        let voxels = values.len() / self.channels;
        if self.written + voxels > self.expected {
            return Err(write_error(
                &self.path,
                std::io::Error::other(format!(
                    "{} voxels given for a volume of {}",
                    self.written + voxels,
                    self.expected
                )),
            ));
        }
        let rgb = self.channels == 3;
        let result = (|| {
            let out = self.out();
            let mut buffer = Vec::with_capacity(1 << 16);
            for chunk in values.chunks(1 << 14) {
                buffer.clear();
                if rgb {
                    buffer.extend(chunk.iter().map(|v| v.round().clamp(0.0, 255.0) as u8));
                } else {
                    for v in chunk {
                        buffer.extend_from_slice(&v.to_le_bytes());
                    }
                }
                out.write_all(&buffer)?;
            }
            Ok(())
        })();
        self.written += voxels;
        result.map_err(|e| write_error(&self.path, e))
    }

    /// Checks that every voxel was written, then puts the file in place.
    pub fn finish(self) -> Result<(), LoadError> {
        if self.written != self.expected {
            return Err(write_error(
                &self.path,
                std::io::Error::other(format!(
                    "{} of {} voxels written",
                    self.written, self.expected
                )),
            ));
        }
        let path = self.path;
        let file = match self.body {
            Body::Plain(file) => Ok(file),
            Body::Gzip(encoder) => encoder.finish(),
        };
        file.and_then(AtomicFile::commit)
            .map_err(|e| write_error(&path, e))
    }
}

fn write_error(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The fields of a NIfTI-1 header this reader uses.
struct Header {
    little_endian: bool,
    dims: [usize; 3],
    datatype: i16,
    bytes_per_sample: usize,
    pixdim: [f32; 8],
    vox_offset: u64,
    slope: f32,
    intercept: f32,
    qform_code: i16,
    sform_code: i16,
    quatern: [f32; 6],
    srow: [[f32; 4]; 3],
    extra_volumes: usize,
}

impl Header {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        let little_endian = match (
            i32::from_le_bytes(bytes4(raw, 0)),
            i32::from_be_bytes(bytes4(raw, 0)),
        ) {
            (348, _) => true,
            (_, 348) => false,
            _ => return Err("not a NIfTI-1 header (sizeof_hdr is not 348)".into()),
        };
        let i16_at = |o: usize| {
            let b = [raw[o], raw[o + 1]];
            if little_endian {
                i16::from_le_bytes(b)
            } else {
                i16::from_be_bytes(b)
            }
        };
        let f32_at = |o: usize| {
            if little_endian {
                f32::from_le_bytes(bytes4(raw, o))
            } else {
                f32::from_be_bytes(bytes4(raw, o))
            }
        };
        let rank = i16_at(40);
        if !(1..=7).contains(&rank) {
            return Err(format!("dim[0] = {rank} is not a valid rank"));
        }
        let mut dims = [1usize; 3];
        let mut extra_volumes = 1usize;
        for axis in 0..rank as usize {
            let n = i16_at(42 + 2 * axis);
            if n < 1 {
                return Err(format!("dim[{}] = {n}", axis + 1));
            }
            if axis < 3 {
                dims[axis] = n as usize;
            } else {
                extra_volumes *= n as usize;
            }
        }
        let datatype = i16_at(70);
        let bytes_per_sample = match datatype {
            2 | 256 => 1,
            4 | 512 => 2,
            8 | 16 | 768 => 4,
            64 | 1024 | 1280 => 8,
            128 => 3,
            2304 => 4,
            other => return Err(format!("datatype {other} is not supported")),
        };
        let mut pixdim = [0f32; 8];
        for (i, p) in pixdim.iter_mut().enumerate() {
            *p = f32_at(76 + 4 * i);
        }
        let vox_offset = f32_at(108);
        let mut srow = [[0f32; 4]; 3];
        for (r, row) in srow.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f32_at(280 + 16 * r + 4 * c);
            }
        }
        let mut quatern = [0f32; 6];
        for (i, q) in quatern.iter_mut().enumerate() {
            *q = f32_at(256 + 4 * i);
        }
        Ok(Self {
            little_endian,
            dims,
            datatype,
            bytes_per_sample,
            pixdim,
            vox_offset: if vox_offset.is_finite() && vox_offset >= 0.0 {
                vox_offset as u64
            } else {
                DATA_OFFSET as u64
            },
            slope: f32_at(112),
            intercept: f32_at(116),
            qform_code: i16_at(252),
            sform_code: i16_at(254),
            quatern,
            srow,
            extra_volumes,
        })
    }

    fn samples(&self) -> Result<u64, LoadError> {
        let n = self.dims.iter().map(|&d| d as u64).product::<u64>();
        if n > MAX_SAMPLES {
            return Err(LoadError::TooLarge {
                bytes: n * 4,
                limit: MAX_SAMPLES * 4,
            });
        }
        Ok(n)
    }

    /// The LPS affine, from sform, qform or pixdim in that order.
    fn affine_lps(&self) -> [[f64; 4]; 4] {
        let mut m = [[0.0f64; 4]; 4];
        m[3][3] = 1.0;
        let spacing = |i: usize| {
            let p = f64::from(self.pixdim[i]).abs();
            if p > 0.0 && p.is_finite() { p } else { 1.0 }
        };
        if self.sform_code > 0 {
            for (r, row) in self.srow.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    m[r][c] = f64::from(*v);
                }
            }
        } else if self.qform_code > 0 {
            let [b, c, d, x, y, z] = self.quatern.map(f64::from);
            let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
            let r = [
                [
                    a * a + b * b - c * c - d * d,
                    2.0 * (b * c - a * d),
                    2.0 * (b * d + a * c),
                ],
                [
                    2.0 * (b * c + a * d),
                    a * a + c * c - b * b - d * d,
                    2.0 * (c * d - a * b),
                ],
                [
                    2.0 * (b * d - a * c),
                    2.0 * (c * d + a * b),
                    a * a + d * d - c * c - b * b,
                ],
            ];
            let qfac = if self.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
            let scale = [spacing(1), spacing(2), spacing(3) * qfac];
            for (row, r_row) in r.iter().enumerate() {
                for col in 0..3 {
                    m[row][col] = r_row[col] * scale[col];
                }
            }
            m[0][3] = x;
            m[1][3] = y;
            m[2][3] = z;
        } else {
            for (axis, row) in m.iter_mut().take(3).enumerate() {
                row[axis] = spacing(axis + 1);
            }
        }
        for row in m.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        m
    }

    fn into_volume(self, data: &[u8]) -> Result<Volume, String> {
        let geometry = Geometry::from_affine_lps(self.dims, &self.affine_lps());
        let le = self.little_endian;
        let (slope, intercept) = if self.slope != 0.0 && self.slope.is_finite() {
            (
                f64::from(self.slope),
                if self.intercept.is_finite() {
                    f64::from(self.intercept)
                } else {
                    0.0
                },
            )
        } else {
            (1.0, 0.0)
        };
        let n = self.bytes_per_sample;
        let read = |chunk: &[u8]| -> f64 {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(chunk);
            if !le {
                b[..n].reverse();
            }
            match self.datatype {
                2 => f64::from(b[0]),
                256 => f64::from(b[0] as i8),
                4 => f64::from(i16::from_le_bytes([b[0], b[1]])),
                512 => f64::from(u16::from_le_bytes([b[0], b[1]])),
                8 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                768 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                16 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                64 => f64::from_le_bytes(b),
                1024 => i64::from_le_bytes(b) as f64,
                _ => u64::from_le_bytes(b) as f64,
            }
        };
        let (channels, values): (usize, Vec<f32>) = match self.datatype {
            128 => (3, data.iter().map(|v| f32::from(*v)).collect()),
            2304 => (
                3,
                data.chunks_exact(4)
                    .flat_map(|px| [px[0], px[1], px[2]].map(f32::from))
                    .collect(),
            ),
            _ => (
                1,
                data.chunks_exact(n)
                    .map(|c| (read(c) * slope + intercept) as f32)
                    .collect(),
            ),
        };
        let mut volume =
            Volume::with_channels(geometry, channels, values).map_err(|e| e.to_string())?;
        if self.extra_volumes > 1 {
            volume.warnings.push(format!(
                "4-D file: only the first of {} volumes was read",
                self.extra_volumes
            ));
        }
        Ok(volume)
    }
}

fn bytes4(raw: &[u8], offset: usize) -> [u8; 4] {
    [
        raw[offset],
        raw[offset + 1],
        raw[offset + 2],
        raw[offset + 3],
    ]
}

/// A little-endian NIfTI-1 header (plus the 4-byte empty extension block).
fn encode_header(g: &Geometry, channels: usize, description: &str) -> Vec<u8> {
    let mut h = vec![0u8; DATA_OFFSET];
    let put_i16 = |h: &mut Vec<u8>, o: usize, v: i16| h[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, o: usize, v: f64| h[o..o + 4].copy_from_slice(&(v as f32).to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[38] = b'r';
    put_i16(&mut h, 40, 3);
    for axis in 0..3 {
        put_i16(
            &mut h,
            42 + 2 * axis,
            g.dims[axis].min(i16::MAX as usize) as i16,
        );
    }
    for axis in 3..7 {
        put_i16(&mut h, 42 + 2 * axis, 1);
    }
    let (datatype, bitpix) = if channels == 3 { (128, 24) } else { (16, 32) };
    put_i16(&mut h, 70, datatype);
    put_i16(&mut h, 72, bitpix);
    let ras = g.affine_ras();
    let rotation = [
        [
            ras[0][0] / g.spacing[0],
            ras[0][1] / g.spacing[1],
            ras[0][2] / g.spacing[2],
        ],
        [
            ras[1][0] / g.spacing[0],
            ras[1][1] / g.spacing[1],
            ras[1][2] / g.spacing[2],
        ],
        [
            ras[2][0] / g.spacing[0],
            ras[2][1] / g.spacing[1],
            ras[2][2] / g.spacing[2],
        ],
    ];
    let quaternion = rotation_to_quaternion(&rotation);
    put_f32(&mut h, 76, quaternion.map_or(1.0, |q| q.3));
    for axis in 0..3 {
        put_f32(&mut h, 80 + 4 * axis, g.spacing[axis]);
    }
    put_f32(&mut h, 108, DATA_OFFSET as f64);
    put_f32(&mut h, 112, 1.0);
    h[123] = 2; // xyzt_units: millimetres
    let bytes = description.as_bytes();
    h[148..148 + bytes.len().min(79)].copy_from_slice(&bytes[..bytes.len().min(79)]);
    if let Some((b, c, d, _)) = quaternion {
        put_i16(&mut h, 252, 1);
        put_f32(&mut h, 256, b);
        put_f32(&mut h, 260, c);
        put_f32(&mut h, 264, d);
    }
    put_i16(&mut h, 254, 1);
    put_f32(&mut h, 268, ras[0][3]);
    put_f32(&mut h, 272, ras[1][3]);
    put_f32(&mut h, 276, ras[2][3]);
    for (r, row) in ras.iter().take(3).enumerate() {
        for (c, v) in row.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * r + 4 * c, *v);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

/// Quaternion (b, c, d, qfac) of a rotation, as nifti1_io's mat44_to_quatern; `None` when
/// the axes are not orthonormal (sheared grids are described by the sform alone).
fn rotation_to_quaternion(r: &[[f64; 3]; 3]) -> Option<(f64, f64, f64, f64)> {
    let columns = [0, 1, 2].map(|c| [r[0][c], r[1][c], r[2][c]]);
    for a in 0..3 {
        for b in 0..3 {
            let expected = if a == b { 1.0 } else { 0.0 };
            if (dot(columns[a], columns[b]) - expected).abs() > 1e-4 {
                return None;
            }
        }
    }
    invert3(r)?;
    let det = dot(cross(columns[0], columns[1]), columns[2]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    let m = |i: usize, j: usize| if j == 2 { r[i][j] * qfac } else { r[i][j] };
    let trace = m(0, 0) + m(1, 1) + m(2, 2) + 1.0;
    let (a, b, c, d);
    if trace > 0.5 {
        let a0 = 0.5 * trace.sqrt();
        a = a0;
        b = 0.25 * (m(2, 1) - m(1, 2)) / a0;
        c = 0.25 * (m(0, 2) - m(2, 0)) / a0;
        d = 0.25 * (m(1, 0) - m(0, 1)) / a0;
    } else {
        let xd = 1.0 + m(0, 0) - (m(1, 1) + m(2, 2));
        let yd = 1.0 + m(1, 1) - (m(0, 0) + m(2, 2));
        let zd = 1.0 + m(2, 2) - (m(0, 0) + m(1, 1));
        if xd > 1.0 {
            let b0 = 0.5 * xd.sqrt();
            b = b0;
            c = 0.25 * (m(0, 1) + m(1, 0)) / b0;
            d = 0.25 * (m(0, 2) + m(2, 0)) / b0;
            a = 0.25 * (m(2, 1) - m(1, 2)) / b0;
        } else if yd > 1.0 {
            let c0 = 0.5 * yd.sqrt();
            c = c0;
            b = 0.25 * (m(0, 1) + m(1, 0)) / c0;
            d = 0.25 * (m(1, 2) + m(2, 1)) / c0;
            a = 0.25 * (m(0, 2) - m(2, 0)) / c0;
        } else {
            let d0 = 0.5 * zd.sqrt();
            d = d0;
            b = 0.25 * (m(0, 2) + m(2, 0)) / d0;
            c = 0.25 * (m(1, 2) + m(2, 1)) / d0;
            a = 0.25 * (m(1, 0) - m(0, 1)) / d0;
        }
    }
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    Some((b * sign, c * sign, d * sign, qfac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::geometry::normalize;

    fn oblique() -> Volume {
        let geometry = Geometry {
            dims: [5, 4, 3],
            spacing: [0.9, 1.1, 2.5],
            origin: [12.0, -30.5, 60.25],
            direction: [
                normalize([0.98, 0.2, 0.0]),
                normalize([-0.2, 0.98, 0.1]),
                normalize(cross(
                    normalize([0.98, 0.2, 0.0]),
                    normalize([-0.2, 0.98, 0.1]),
                )),
            ],
        };
        let data = (0..60).map(|v| v as f32 * 1.5 - 7.0).collect();
        Volume::new(geometry, data).expect("valid")
    }

    #[test]
    fn round_trip_plain_and_gzip_through_sform_and_qform() {
        let dir = tempfile::tempdir().expect("temp dir");
        let volume = oblique();
        for name in ["v.nii", "v.nii.gz"] {
            let path = dir.path().join(name);
            write(&volume, &path, false).expect("write");
            let back = read(&path).expect("read");
            assert_eq!(back.data, volume.data);
            let (a, b) = (back.geometry.affine_lps(), volume.geometry.affine_lps());
            for r in 0..3 {
                for c in 0..4 {
                    assert!((a[r][c] - b[r][c]).abs() < 1e-4, "{a:?} vs {b:?}");
                }
            }
            // The qform alone must describe the same grid.
            let mut raw = std::fs::read(dir.path().join("v.nii")).expect("read raw");
            raw[254..256].copy_from_slice(&0i16.to_le_bytes());
            let qpath = dir.path().join("q.nii");
            std::fs::write(&qpath, raw).expect("write raw");
            let q = read(&qpath).expect("read qform").geometry.affine_lps();
            for r in 0..3 {
                for c in 0..4 {
                    assert!((q[r][c] - b[r][c]).abs() < 1e-4, "{q:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v.nii");
        write(&oblique(), &path, false).expect("write");
        let raw = std::fs::read(&path).expect("read");
        std::fs::write(&path, &raw[..raw.len() - 10]).expect("truncate");
        assert!(matches!(read(&path), Err(LoadError::Nifti { .. })));
        std::fs::write(&path, b"hello").expect("garbage");
        assert!(read(&path).is_err());
    }

    #[test]
    fn a_volume_streamed_slice_by_slice_is_the_volume_written_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let volume = oblique();
        let slice = 5 * 4;
        let description = describe(&volume.modality, &volume.units);
        for name in ["s.nii", "s.nii.gz"] {
            let path = dir.path().join(name);
            let mut writer =
                NiftiWriter::create(&path, &volume.geometry, 1, &description, false).expect("open");
            for chunk in volume.data.chunks(2 * slice) {
                writer.append(chunk).expect("append");
                assert!(!path.exists(), "nothing in place before finish");
            }
            writer.finish().expect("finish");
            let whole = dir.path().join(format!("whole-{name}"));
            write(&volume, &whole, false).expect("write");
            let (streamed, written) = (read(&path).expect("read"), read(&whole).expect("read"));
            assert_eq!(streamed.data, written.data);
            assert_eq!(streamed.geometry, written.geometry);
        }
    }

    #[test]
    fn an_unfinished_or_short_stream_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let volume = oblique();
        let path = dir.path().join("v.nii.gz");
        let open = || NiftiWriter::create(&path, &volume.geometry, 1, "test", false).expect("open");
        {
            let mut writer = open();
            writer.append(&volume.data[..20]).expect("append");
        } // dropped half-way (an error or a cancel upstream)
        let short = {
            let mut writer = open();
            writer.append(&volume.data[..40]).expect("append");
            writer.finish()
        };
        assert!(matches!(short, Err(LoadError::Write { .. })), "{short:?}");
        let mut writer = open();
        assert!(
            writer.append(&[0.0; 61]).is_err(),
            "more voxels than the grid"
        );
        drop(writer);
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert!(left.is_empty(), "no file and no partial file: {left:?}");
        write(&volume, &path, false).expect("write");
        assert!(
            NiftiWriter::create(&path, &volume.geometry, 1, "test", false).is_err(),
            "an existing file is refused up front"
        );
    }
}
