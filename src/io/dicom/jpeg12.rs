//! A decoder for sequential Huffman JPEG (SOF0/SOF1) with 12-bit samples, the "JPEG
//! Extended" process DICOM uses for 12-bit lossy MR, CT and NM images (WG04 `JPLY`).
//! dicom-pixeldata's JPEG codec rejects 12-bit precision (and pydicom fails on these too),
//! so the loader falls back to this one. Single-component (grayscale) images only.
//!
//! The inverse DCT is computed in double precision, so results may differ by one grey level
//! from libjpeg's integer IDCT in a few pixels; both are within the codec's own error.

/// A decoded grayscale image.
#[derive(Debug, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub precision: u8,
    pub samples: Vec<u16>,
}

/// Largest image accepted (pixels).
const MAX_PIXELS: usize = 1 << 28;

/// Zigzag order: position `k` of the coded sequence is natural index `ZIGZAG[k]`.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A Huffman table in the canonical (JPEG Annex C) form.
#[derive(Clone, Default)]
struct Huffman {
    /// Largest code of each length (1..=16), or -1.
    max_code: [i32; 17],
    /// Index into `values` of the first code of each length, minus that code.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Self, String> {
        let total: usize = counts.iter().map(|c| usize::from(*c)).sum();
        if total != values.len() || total > 256 {
            return Err("malformed Huffman table".into());
        }
        let mut table = Self {
            max_code: [-1; 17],
            offset: [0; 17],
            values,
        };
        let mut code = 0i32;
        let mut index = 0i32;
        for length in 1..=16 {
            let count = i32::from(counts[length - 1]);
            if count > 0 {
                table.offset[length] = index - code;
                code += count;
                index += count;
                table.max_code[length] = code - 1;
            }
            code <<= 1;
        }
        Ok(table)
    }
}

/// Reads entropy-coded bits, removing stuffed zero bytes and stopping at markers.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    buffer: u32,
    bits: u32,
    /// A marker was met: only zero bits follow.
    marker_hit: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            buffer: 0,
            bits: 0,
            marker_hit: false,
        }
    }

    fn fill(&mut self) {
        while self.bits <= 24 {
            let byte = if self.marker_hit || self.pos >= self.data.len() {
                0
            } else {
                let b = self.data[self.pos];
                if b == 0xFF {
                    let next = self.data.get(self.pos + 1).copied().unwrap_or(0);
                    if next == 0x00 {
                        self.pos += 2;
                        0xFF
                    } else {
                        self.marker_hit = true;
                        0
                    }
                } else {
                    self.pos += 1;
                    b
                }
            };
            self.buffer |= u32::from(byte) << (24 - self.bits);
            self.bits += 8;
        }
    }

    fn bit(&mut self) -> u32 {
        self.fill();
        let b = self.buffer >> 31;
        self.buffer <<= 1;
        self.bits -= 1;
        b
    }

    fn receive(&mut self, count: u32) -> i32 {
        let mut v = 0i32;
        for _ in 0..count {
            v = (v << 1) | self.bit() as i32;
        }
        v
    }

    fn decode(&mut self, table: &Huffman) -> Result<u8, String> {
        let mut code = 0i32;
        for length in 1..=16 {
            code = (code << 1) | self.bit() as i32;
            if code <= table.max_code[length] {
                let index = (code + table.offset[length]) as usize;
                return table
                    .values
                    .get(index)
                    .copied()
                    .ok_or_else(|| "bad Huffman code".to_string());
            }
        }
        Err("bad Huffman code".into())
    }

    /// Skips to the restart marker that must follow and resets the bit buffer.
    fn restart(&mut self) -> Result<(), String> {
        self.buffer = 0;
        self.bits = 0;
        self.marker_hit = false;
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]) {
                self.pos += 2;
                return Ok(());
            }
            self.pos += 1;
        }
        Err("missing restart marker".into())
    }
}

/// Sign-extends a `size`-bit magnitude category value (JPEG's EXTEND).
fn extend(value: i32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if value < (1 << (size - 1)) {
        value - (1 << size) + 1
    } else {
        value
    }
}

fn u16_at(data: &[u8], pos: usize) -> Result<usize, String> {
    data.get(pos..pos + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| "truncated JPEG header".to_string())
}

/// Decodes a sequential Huffman JPEG stream with one component.
pub fn decode(data: &[u8]) -> Result<GrayImage, String> {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err("not a JPEG stream (no SOI)".into());
    }
    let mut pos = 2;
    let mut quant = [[0u16; 64]; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<Huffman>; 4] = Default::default();
    let mut frame: Option<(usize, usize, u8, usize)> = None; // width, height, precision, q table
    let mut restart_interval = 0usize;
    loop {
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if data.get(pos) != Some(&0xFF) {
            return Err("expected a JPEG marker".into());
        }
        let marker = *data.get(pos + 1).ok_or("truncated JPEG stream")?;
        pos += 2;
        let length = u16_at(data, pos)?;
        let segment = data
            .get(pos + 2..pos + length)
            .ok_or("truncated JPEG segment")?;
        match marker {
            0xC0 | 0xC1 => {
                let precision = segment[0];
                let height = u16_at(segment, 1)?;
                let width = u16_at(segment, 3)?;
                let components = *segment.get(5).ok_or("truncated SOF")?;
                if components != 1 {
                    return Err(format!(
                        "{components}-component 12-bit JPEG is not supported"
                    ));
                }
                if precision != 8 && precision != 12 {
                    return Err(format!("sample precision {precision}"));
                }
                if width == 0 || height == 0 || width * height > MAX_PIXELS {
                    return Err(format!("image size {width}×{height}"));
                }
                let q = usize::from(*segment.get(8).ok_or("truncated SOF")? & 3);
                frame = Some((width, height, precision, q));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(format!(
                    "JPEG process SOF{} is not supported",
                    marker - 0xC0
                ));
            }
            0xC4 => {
                let mut p = 0;
                while p < segment.len() {
                    let class_id = segment[p];
                    let counts: [u8; 16] = segment
                        .get(p + 1..p + 17)
                        .ok_or("truncated DHT")?
                        .try_into()
                        .map_err(|_| "truncated DHT")?;
                    let total: usize = counts.iter().map(|c| usize::from(*c)).sum();
                    let values = segment
                        .get(p + 17..p + 17 + total)
                        .ok_or("truncated DHT")?
                        .to_vec();
                    let table = Huffman::new(&counts, values)?;
                    let id = usize::from(class_id & 3);
                    if class_id >> 4 == 0 {
                        dc_tables[id] = Some(table);
                    } else {
                        ac_tables[id] = Some(table);
                    }
                    p += 17 + total;
                }
            }
            0xDB => {
                let mut p = 0;
                while p < segment.len() {
                    let wide = segment[p] >> 4 == 1;
                    let id = usize::from(segment[p] & 3);
                    for k in 0..64 {
                        quant[id][ZIGZAG[k]] = if wide {
                            u16_at(segment, p + 1 + 2 * k)? as u16
                        } else {
                            u16::from(*segment.get(p + 1 + k).ok_or("truncated DQT")?)
                        };
                    }
                    p += if wide { 129 } else { 65 };
                }
            }
            0xDD => restart_interval = u16_at(segment, 0)?,
            0xDA => {
                let (width, height, precision, q) = frame.ok_or("SOS before SOF")?;
                let selectors = *segment.get(2).ok_or("truncated SOS")?;
                let dc = dc_tables[usize::from(selectors >> 4 & 3)]
                    .as_ref()
                    .ok_or("missing DC table")?;
                let ac = ac_tables[usize::from(selectors & 3)]
                    .as_ref()
                    .ok_or("missing AC table")?;
                let samples = decode_scan(
                    data,
                    pos + length,
                    (width, height, precision),
                    &quant[q],
                    (dc, ac),
                    restart_interval,
                )?;
                return Ok(GrayImage {
                    width,
                    height,
                    precision,
                    samples,
                });
            }
            0xD9 => return Err("no scan before EOI".into()),
            _ => {}
        }
        pos += length;
    }
}

fn decode_scan(
    data: &[u8],
    start: usize,
    (width, height, precision): (usize, usize, u8),
    quant: &[u16; 64],
    (dc, ac): (&Huffman, &Huffman),
    restart_interval: usize,
) -> Result<Vec<u16>, String> {
    let blocks_x = width.div_ceil(8);
    let blocks_y = height.div_ceil(8);
    let mut reader = BitReader::new(data, start);
    let mut samples = vec![0u16; width * height];
    let mut predictor = 0i32;
    let basis = idct_basis();
    let level = f64::from(1u32 << (precision - 1));
    let max = f64::from((1u32 << precision) - 1);
    for block in 0..blocks_x * blocks_y {
        if restart_interval > 0 && block > 0 && block % restart_interval == 0 {
            reader.restart()?;
            predictor = 0;
        }
        let mut coefficients = [0f64; 64];
        let size = u32::from(reader.decode(dc)?);
        if size > 16 {
            return Err("bad DC coefficient".into());
        }
        predictor += extend(reader.receive(size), size);
        coefficients[0] = f64::from(predictor) * f64::from(quant[0]);
        let mut k = 1;
        while k < 64 {
            let rs = reader.decode(ac)?;
            let (run, size) = (usize::from(rs >> 4), u32::from(rs & 15));
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                break;
            }
            k += run;
            if k > 63 {
                return Err("AC coefficients overrun the block".into());
            }
            let value = extend(reader.receive(size), size);
            coefficients[ZIGZAG[k]] = f64::from(value) * f64::from(quant[ZIGZAG[k]]);
            k += 1;
        }
        let (bx, by) = (block % blocks_x, block / blocks_x);
        // Separable inverse DCT: rows then columns.
        let mut rows = [0f64; 64];
        for y in 0..8 {
            for x in 0..8 {
                rows[y * 8 + x] = (0..8).map(|u| basis[x][u] * coefficients[y * 8 + u]).sum();
            }
        }
        for y in 0..8 {
            let py = by * 8 + y;
            if py >= height {
                break;
            }
            for x in 0..8 {
                let px = bx * 8 + x;
                if px >= width {
                    break;
                }
                let value: f64 = (0..8).map(|v| basis[y][v] * rows[v * 8 + x]).sum();
                samples[py * width + px] = (value + level).round().clamp(0.0, max) as u16;
            }
        }
    }
    Ok(samples)
}

/// `basis[x][u] = C(u)/2 · cos((2x+1)uπ/16)`.
fn idct_basis() -> [[f64; 8]; 8] {
    let mut basis = [[0f64; 8]; 8];
    for (x, row) in basis.iter_mut().enumerate() {
        for (u, value) in row.iter_mut().enumerate() {
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            *value = c / 2.0 * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos();
        }
    }
    basis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_follows_the_standard() {
        assert_eq!(extend(0, 1), -1);
        assert_eq!(extend(1, 1), 1);
        assert_eq!(extend(2, 3), -5);
        assert_eq!(extend(5, 3), 5);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"not a jpeg").is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xC1, 0x00]).is_err());
    }

    #[test]
    fn idct_of_a_dc_only_block_is_flat() {
        let basis = idct_basis();
        // DC coefficient 8·v gives a flat block of value v.
        let v: f64 = (0..8)
            .map(|u| basis[3][u] * if u == 0 { 8.0 } else { 0.0 })
            .sum();
        let w: f64 = (0..8)
            .map(|u| basis[5][u] * if u == 0 { v } else { 0.0 })
            .sum();
        assert!((w - 1.0).abs() < 1e-12);
    }
}
