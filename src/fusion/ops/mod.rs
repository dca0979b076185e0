//! The operations the network calls. Each runs burn's own operation on the GPU and this
//! project's kernels on the CPU (`cpu`), with the composition's values — bit for bit where
//! training depends on it: the convolution ([`conv`], a burn backend extension with its own
//! backward step), GroupNorm ([`group_norm`]), the Haar transform ([`haar`]), ReLU
//! ([`activation`]), slices with a parallel backward step ([`slicing`]) and the experts' and
//! heads' contrasts ([`detail_stack`]); [`device`] says which path a device takes and runs CPU
//! work on rayon's workers; [`host`] brings values back to the host.

pub mod activation;
pub mod conv;
pub mod cpu;
pub mod detail_stack;
pub mod device;
pub mod group_norm;
pub mod haar;
pub mod host;
pub mod slicing;
