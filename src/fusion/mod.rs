//! The fusion layer (burn): W-DUALMINE's building blocks. Only this layer imports burn.
//!
//! So far, W-DUALMINE's fixed and learnable parts with their properties tested: the Haar
//! filters of the wavelet expert, the shared ResBlock encoder, the per-scale reliability head
//! and the soft gradient mixer.
//! The encoder/experts/decoder assembly, the Fuser engine and training are still to come.

pub mod decoder;
pub mod encoder;
pub mod experts;
pub mod fuser;
pub mod haar;
pub mod images;
pub mod mixer;
pub mod model;
pub mod reliability;
pub mod weights;
