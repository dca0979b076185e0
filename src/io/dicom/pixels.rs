//! Decoding pixel data (native or compressed, through dicom-pixeldata's codecs) into
//! stored values, frame by frame, without trusting the header's sizes.

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation,
    PlanarConfiguration,
};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::ImageHeader;
use super::tags::integer;

/// Largest decoded pixel buffer accepted from a single object.
pub const MAX_DECODED_BYTES: u64 = 8 << 30;

/// Why pixels could not be decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum PixelProblem {
    /// The transfer syntax is unknown or has no decoder here.
    UnsupportedTransferSyntax { uid: String, name: String },
    /// The header promises more data than the file could hold.
    Implausible(String),
    /// The codec failed, or the decoded buffer is malformed.
    Decode(String),
}

/// Checks, before decoding, that the transfer syntax can be decoded and that the header's
/// sizes are plausible for the stored data (a lying header must not cause a huge allocation).
pub fn check_decodable(obj: &DefaultDicomObject, header: &ImageHeader) -> Result<(), PixelProblem> {
    let uid = header.transfer_syntax.as_str();
    let ts =
        TransferSyntaxRegistry
            .get(uid)
            .ok_or_else(|| PixelProblem::UnsupportedTransferSyntax {
                uid: uid.to_string(),
                name: "unknown".to_string(),
            })?;
    if !ts.can_decode_all() {
        return Err(PixelProblem::UnsupportedTransferSyntax {
            uid: uid.to_string(),
            name: ts.name().to_string(),
        });
    }
    let expected = header.decoded_bytes();
    if expected > MAX_DECODED_BYTES {
        return Err(PixelProblem::Implausible(format!(
            "{expected} bytes of pixels declared"
        )));
    }
    let pixel_data = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| PixelProblem::Decode("the file has no pixel data".into()))?;
    if let Some(fragments) = pixel_data.value().fragments() {
        let stored: u64 = fragments.iter().map(|f| f.len() as u64).sum();
        if fragments.len() < header.number_of_frames as usize {
            return Err(PixelProblem::Implausible(format!(
                "{} frames declared but only {} compressed fragments stored",
                header.number_of_frames,
                fragments.len()
            )));
        }
        // Each frame's codestream must declare the header's size, or a codec would allocate
        // for whatever the stream claims.
        let frames = header.number_of_frames as usize;
        let starts: Vec<usize> = if fragments.len() == frames {
            (0..frames).collect()
        } else {
            vec![0]
        };
        for index in starts {
            let declared = fragments
                .get(index)
                .and_then(|f| super::codestream::dimensions(f));
            if let Some((width, height)) = declared
                && (width != header.columns as usize || height != header.rows as usize)
            {
                return Err(PixelProblem::Implausible(format!(
                    "the compressed frame is {width}×{height}, the header says {}×{}",
                    header.columns, header.rows
                )));
            }
        }
        if expected > max_decoded_from(stored) {
            return Err(PixelProblem::Implausible(format!(
                "{expected} decoded bytes declared from {stored} compressed bytes"
            )));
        }
    } else {
        let stored = pixel_data
            .value()
            .to_bytes()
            .map(|b| b.len() as u64)
            .unwrap_or(0);
        let needed = if header.bits_allocated == 1 {
            expected.div_ceil(8)
        } else {
            expected
        };
        if stored < needed {
            return Err(PixelProblem::Implausible(format!(
                "pixel data holds {stored} bytes, {needed} needed for {}×{}×{} frames",
                header.columns, header.rows, header.number_of_frames
            )));
        }
    }
    Ok(())
}

/// No codec in use compresses medical images better than ~1000:1; anything claiming more
/// (beyond 1 MiB) is a lying header.
pub fn max_decoded_from(compressed_bytes: u64) -> u64 {
    compressed_bytes.saturating_mul(1000).max(1 << 20)
}

/// Decoded pixels of one object, ready to be read out frame by frame.
pub struct DecodedFrames<'a> {
    pixels: DecodedPixelData<'a>,
    frame_samples: usize,
}

impl<'a> DecodedFrames<'a> {
    /// Decodes every frame of `obj` (call [`check_decodable`] first).
    pub fn decode(obj: &'a DefaultDicomObject, header: &ImageHeader) -> Result<Self, PixelProblem> {
        // Third-party codecs can panic on malformed streams; that must stay an error here.
        let pixels =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.decode_pixel_data()))
                .map_err(|_| PixelProblem::Decode("the codec failed on malformed data".into()))?
                .map_err(|e| PixelProblem::Decode(super::error_chain(&e)))?;
        let frame_samples = header.rows as usize
            * header.columns as usize
            * usize::from(pixels.samples_per_pixel());
        let bytes_per_sample = usize::from(pixels.bits_allocated().div_ceil(8)).max(1);
        let needed = frame_samples * bytes_per_sample * pixels.number_of_frames() as usize;
        if pixels.data().len() < needed {
            return Err(PixelProblem::Decode(format!(
                "decoder returned {} bytes, {needed} expected",
                pixels.data().len()
            )));
        }
        if pixels.samples_per_pixel() == 3
            && matches!(
                pixels.photometric_interpretation(),
                PhotometricInterpretation::YbrFull422 | PhotometricInterpretation::YbrPartial420
            )
        {
            return Err(PixelProblem::Decode(format!(
                "uncompressed {} colour is not supported",
                pixels.photometric_interpretation()
            )));
        }
        Ok(Self {
            pixels,
            frame_samples,
        })
    }

    /// Number of frames decoded.
    pub fn frame_count(&self) -> usize {
        self.pixels.number_of_frames() as usize
    }

    /// Samples per pixel (1 or 3).
    pub fn samples_per_pixel(&self) -> usize {
        usize::from(self.pixels.samples_per_pixel())
    }

    /// Writes frame `frame`'s values, mapped by `value * slope + intercept`, into `out`
    /// (interleaved RGB when 3 samples per pixel). Values stay as stored: MONOCHROME1 is a
    /// display convention, not a change of physical value.
    pub fn write_frame(
        &self,
        frame: usize,
        slope: f64,
        intercept: f64,
        out: &mut [f32],
    ) -> Result<(), PixelProblem> {
        if out.len() != self.frame_samples || frame >= self.frame_count() {
            return Err(PixelProblem::Decode(format!(
                "frame {frame} does not fit the output"
            )));
        }
        let p = &self.pixels;
        let bytes = usize::from(p.bits_allocated().div_ceil(8)).max(1);
        let start = frame * self.frame_samples * bytes;
        let raw = &p.data()[start..start + self.frame_samples * bytes];
        let format = SampleFormat {
            bytes,
            signed: p.pixel_representation() == PixelRepresentation::Signed,
            stored: u32::from(p.bits_stored().clamp(1, 32)),
            samples_per_pixel: self.samples_per_pixel(),
            planar: p.planar_configuration() == PlanarConfiguration::PixelFirst,
            ybr_full: *p.photometric_interpretation() == PhotometricInterpretation::YbrFull,
        };
        write_samples(raw, &format, slope, intercept, out);
        Ok(())
    }
}

/// How stored samples are laid out in decoded bytes (little endian).
struct SampleFormat {
    bytes: usize,
    signed: bool,
    stored: u32,
    samples_per_pixel: usize,
    /// Colour planes stored one after another (PlanarConfiguration 1).
    planar: bool,
    /// Uncompressed YCbCr that must become RGB.
    ybr_full: bool,
}

/// The value of a stored sample word: sign-extended from `stored` bits when signed.
fn stored_value(word: u32, signed: bool, stored: u32) -> f64 {
    if signed && stored < 32 {
        let shift = 32 - stored;
        f64::from(((word << shift) as i32) >> shift)
    } else if signed {
        f64::from(word as i32)
    } else {
        f64::from(word)
    }
}

/// Converts one frame of stored samples into `value * slope + intercept`, interleaved.
fn write_samples(raw: &[u8], format: &SampleFormat, slope: f64, intercept: f64, out: &mut [f32]) {
    let bytes = format.bytes;
    let sample = |index: usize| -> f64 {
        let b = &raw[index * bytes..(index + 1) * bytes];
        let word: u32 = match bytes {
            1 => u32::from(b[0]),
            2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        };
        stored_value(word, format.signed, format.stored)
    };
    let spp = format.samples_per_pixel.max(1);
    let planar = spp == 3 && format.planar;
    let pixels_per_frame = out.len() / spp;
    for (index, value) in out.iter_mut().enumerate() {
        let source = if planar {
            let (pixel, channel) = (index / 3, index % 3);
            channel * pixels_per_frame + pixel
        } else {
            index
        };
        *value = (sample(source) * slope + intercept) as f32;
    }
    if spp == 3 && format.ybr_full {
        ybr_full_to_rgb(out);
    }
}

/// Whether the pixel data is native and bit-packed (BitsAllocated 1, as segmentations and
/// overlays store it).
pub fn is_native_bit_packed(obj: &DefaultDicomObject, header: &ImageHeader) -> bool {
    header.bits_allocated == 1
        && obj
            .get(tags::PIXEL_DATA)
            .is_some_and(|e| e.value().fragments().is_none())
}

/// Unpacks native BitsAllocated 1 frames into their slices. The bits run on from one pixel,
/// sample and frame to the next with no padding, least significant bit first (PS3.5 8.1.1),
/// so a frame whose pixel count is not a multiple of 8 starts inside a byte.
pub fn write_frames_bit_packed(
    obj: &DefaultDicomObject,
    header: &ImageHeader,
    slices: Vec<(usize, (f64, f64), &mut [f32])>,
) -> Result<(), PixelProblem> {
    let bytes = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.value().to_bytes().ok())
        .ok_or_else(|| PixelProblem::Decode("the file has no native pixel data".into()))?;
    let frame_bits =
        header.rows as usize * header.columns as usize * usize::from(header.samples_per_pixel);
    for (frame, (slope, intercept), out) in slices {
        let first = frame * frame_bits;
        if out.len() != frame_bits || (first + frame_bits).div_ceil(8) > bytes.len() {
            return Err(PixelProblem::Decode(format!(
                "bit-packed frame {frame} lies beyond the {} bytes of pixel data",
                bytes.len()
            )));
        }
        for (index, value) in out.iter_mut().enumerate() {
            let bit = first + index;
            let set = (bytes[bit / 8] >> (bit % 8)) & 1;
            *value = (f64::from(set) * slope + intercept) as f32;
        }
    }
    Ok(())
}

/// Whether `ts` is RLE Lossless.
pub fn is_rle(ts: &str) -> bool {
    ts.trim_end_matches('\0') == "1.2.840.10008.1.2.5"
}

/// Decodes RLE Lossless frames with [`super::rle`] and writes them into their slices.
pub fn write_frames_rle(
    obj: &DefaultDicomObject,
    header: &ImageHeader,
    slices: Vec<(usize, (f64, f64), &mut [f32])>,
) -> Result<(), PixelProblem> {
    let frames = header.number_of_frames as usize;
    let streams = super::fragments::frame_streams(obj, frames, super::fragments::starts_rle_frame)
        .map_err(|e| PixelProblem::Decode(format!("RLE: {e}")))?;
    let bytes = usize::from(header.bits_allocated.div_ceil(8)).max(1);
    let format = SampleFormat {
        bytes,
        signed: integer(obj, tags::PIXEL_REPRESENTATION) == Some(1),
        stored: integer(obj, tags::BITS_STORED)
            .unwrap_or(i64::from(header.bits_allocated))
            .clamp(1, 32) as u32,
        samples_per_pixel: usize::from(header.samples_per_pixel),
        // RLE segments are decoded into interleaved pixels whatever the header says.
        planar: false,
        ybr_full: header.photometric == "YBR_FULL",
    };
    let pixels = header.rows as usize * header.columns as usize;
    for (frame, (slope, intercept), out) in slices {
        let raw =
            super::rle::decode_frame(&streams[frame], pixels, format.samples_per_pixel, bytes)
                .map_err(PixelProblem::Decode)?;
        if out.len() * bytes != raw.len() {
            return Err(PixelProblem::Decode("RLE frame size mismatch".into()));
        }
        write_samples(&raw, &format, slope, intercept, out);
    }
    Ok(())
}

/// Whether `ts` is JPEG baseline (process 1) or extended (processes 2 & 4).
pub fn is_sequential_jpeg(ts: &str) -> bool {
    matches!(
        ts.trim_end_matches('\0'),
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51"
    )
}

/// Decodes gray sequential JPEG frames (12-bit included) with [`super::jpeg12`] and writes
/// them into their slices: the fallback for what dicom-pixeldata's JPEG codec rejects.
pub fn write_frames_jpeg12(
    obj: &DefaultDicomObject,
    header: &ImageHeader,
    slices: Vec<(usize, (f64, f64), &mut [f32])>,
) -> Result<(), String> {
    let frames = header.number_of_frames as usize;
    let streams =
        super::fragments::frame_streams(obj, frames, super::fragments::starts_jpeg_frame)?;
    let signed = integer(obj, tags::PIXEL_REPRESENTATION) == Some(1);
    let stored = integer(obj, tags::BITS_STORED).unwrap_or(16).clamp(1, 16) as u32;
    for (frame, (slope, intercept), out) in slices {
        let image = super::jpeg12::decode(&streams[frame])?;
        if image.width != header.columns as usize || image.height != header.rows as usize {
            return Err(format!(
                "the JPEG stream is {}×{}, the header says {}×{}",
                image.width, image.height, header.columns, header.rows
            ));
        }
        if out.len() != image.samples.len() {
            return Err("frame size mismatch".into());
        }
        for (value, sample) in out.iter_mut().zip(&image.samples) {
            *value = (stored_value(u32::from(*sample), signed, stored) * slope + intercept) as f32;
        }
    }
    Ok(())
}

/// Repairs a known encoder quirk before a second decoding attempt: some JPEG-LS streams
/// (WG04 `MR1_JLSL` among them) carry one `0x00` byte between the entropy-coded data and
/// the EOI marker, which CharLS ≥ 2.3 rejects. Strips that byte from each frame's last
/// fragment when frames map 1:1 to fragments (or there is one frame). Returns whether
/// anything changed.
pub fn strip_jpeg_ls_padding(obj: &mut DefaultDicomObject, frames: u32) -> bool {
    let ts = obj.meta().transfer_syntax().trim_end_matches('\0');
    if ts != "1.2.840.10008.1.2.4.80" && ts != "1.2.840.10008.1.2.4.81" {
        return false;
    }
    let Some(fragments) = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.value().fragments())
    else {
        return false;
    };
    let single_frame = frames == 1;
    if !single_frame && fragments.len() != frames as usize {
        return false;
    }
    let mut fragments: Vec<Vec<u8>> = fragments.to_vec();
    let last_index = fragments.len().saturating_sub(1);
    let mut changed = false;
    for (index, fragment) in fragments.iter_mut().enumerate() {
        if single_frame && index != last_index {
            continue;
        }
        let n = fragment.len();
        if n >= 4 && fragment[n - 3..] == [0x00, 0xFF, 0xD9] && fragment[n - 4] != 0xFF {
            fragment.remove(n - 3);
            changed = true;
        }
    }
    if changed {
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new_fragments(fragments)),
        ));
    }
    changed
}

/// In-place YCbCr (full range) to RGB, for uncompressed YBR_FULL data.
fn ybr_full_to_rgb(values: &mut [f32]) {
    for px in values.chunks_exact_mut(3) {
        let rgb = crate::volume::colour::ycbcr_to_rgb([px[0], px[1], px[2]]);
        for (out, v) in px.iter_mut().zip(rgb) {
            *out = v.round();
        }
    }
}
