//! The fusion layer (burn), the only layer that imports burn: W-DUALMINE's parts and the
//! assembled model, its weights, the Fuser engine (device choice, batched volume fusion),
//! image-pair fusion, and training (loss, batch sampler, trainer with checkpoints).

pub mod conv_backend;
pub mod conv_cpu;
pub mod decoder;
pub mod encoder;
pub mod experts;
pub mod fuser;
pub mod haar;
pub mod images;
pub mod loss;
pub mod mixer;
pub mod model;
pub mod reliability;
pub mod sampler;
pub mod shipped;
pub mod train;
pub mod weights;
