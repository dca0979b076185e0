//! The geometry of a 2-D convolution (NCHW, one group, any stride, padding and dilation) as the
//! CPU kernels see it: sizes, kernel taps, tiles of whole output rows, and which outputs of a
//! tap read inside the image.

use std::ops::Range;

/// The geometry of one convolution: input `[batch, in_channels, h, w]`, weight
/// `[out_channels, in_channels, kh, kw]`, output `[batch, out_channels, out_h, out_w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_size: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before the first row and column (the padding after only shapes `out_size`).
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub out_size: [usize; 2],
}

impl ConvShape {
    /// The geometry of a convolution of `x` by `weight`, or `None` when these kernels do not
    /// cover it (grouped convolution, channel mismatch, a zero stride or dilation, an empty
    /// output): the caller then takes burn's own path.
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<Self> {
        let [batch, in_channels, h, w] = x;
        let [out_channels, weight_in, kh, kw] = weight;
        if groups != 1 || weight_in != in_channels || stride.contains(&0) || dilation.contains(&0) {
            return None;
        }
        let out = |size: usize, kernel: usize, d: usize| -> Option<usize> {
            let padded = size + padding[d].0 + padding[d].1;
            let reach = dilation[d] * (kernel.checked_sub(1)?) + 1;
            (padded >= reach).then(|| (padded - reach) / stride[d] + 1)
        };
        let out_size = [out(h, kh, 0)?, out(w, kw, 1)?];
        let shape = Self {
            batch,
            in_channels,
            in_size: [h, w],
            out_channels,
            kernel: [kh, kw],
            stride,
            padding: [padding[0].0, padding[1].0],
            dilation,
            out_size,
        };
        let empty = [
            batch,
            in_channels,
            out_channels,
            h * w,
            out_size[0] * out_size[1],
        ];
        (!empty.contains(&0)).then_some(shape)
    }

    /// Kernel taps per output channel: the GEMM's inner dimension.
    pub(super) fn taps(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    pub(super) fn in_pixels(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    pub(super) fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// A 1×1 convolution with stride 1 and no padding: the input is its own im2col block.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Tiles of whole output rows of about `pixels` pixels, as (image, rows).
    pub(super) fn tiles(&self, pixels: usize) -> Vec<(usize, Range<usize>)> {
        let rows = self.row_tiles(pixels);
        (0..self.batch)
            .flat_map(|n| rows.iter().map(move |r| (n, r.clone())))
            .collect()
    }

    /// The row ranges of one image's tiles of about `pixels` pixels.
    pub(super) fn row_tiles(&self, pixels: usize) -> Vec<Range<usize>> {
        let [out_h, out_w] = self.out_size;
        let rows = (pixels / out_w).max(1);
        (0..out_h)
            .step_by(rows)
            .map(|r| r..(r + rows).min(out_h))
            .collect()
    }

    /// Output columns `ox` whose input column `ox·stride + offset − padding` lies inside the
    /// image, along dimension `d` (0 rows, 1 columns).
    pub(super) fn valid_outputs(&self, d: usize, offset: usize) -> Range<usize> {
        let (size, stride, pad) = (self.in_size[d], self.stride[d], self.padding[d]);
        let first = pad.saturating_sub(offset).div_ceil(stride);
        let end = if size + pad > offset {
            (size + pad - offset).div_ceil(stride).min(self.out_size[d])
        } else {
            0
        };
        first.min(end)..end
    }
}
