//! Training W-DUALMINE: the composite loss ([`loss`]), seeded batches of crops ([`sampler`]),
//! the trainer with checkpoints ([`train`]), and the operations that only training runs on
//! the CPU — GroupNorm under autodiff ([`group_norm`]) and the Haar transforms' backward steps
//! ([`haar`]), each giving burn's values and gradients bit for bit.

pub mod group_norm;
pub mod haar;
pub mod loss;
pub mod sampler;
pub mod train;
