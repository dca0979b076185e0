//! What W-DUALMINE computes (MODEL.md): a shared multi-scale encoder, per scale a dense
//! reliability head, a spatial and a wavelet expert and the soft gradient mixer between them,
//! and the residual-to-average decoder; [`model`] assembles them and [`weights`] saves and
//! loads them (Burnpack). The layers' operations come from `fusion::ops`.

pub mod decoder;
pub mod encoder;
pub mod experts;
pub mod local;
pub mod mixer;
pub mod model;
pub mod reliability;
pub mod weights;
