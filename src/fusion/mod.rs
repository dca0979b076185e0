//! The fusion layer, the only layer that imports burn: the W-DUALMINE network, its weights,
//! the engine that fuses slice pairs and volume pairs with it, and its training.
//!
//! Rooms, each importing only those below it (ARCHITECTURE.md draws them):
//! - the engine: [`fuser`] (device choice, batched volume fusion with progress and cancel),
//!   [`images`] (2-D pairs, colour through YCbCr) and [`shipped`] (the built-in trained
//!   weights, which model fuses which pair);
//! - [`training`]: the loss, the batch sampler, the trainer with checkpoints, and the
//!   operations only training runs on the CPU (GroupNorm's and the Haar transforms' backward
//!   steps);
//! - [`network`]: what the network computes — encoder, reliability heads, experts, mixer,
//!   decoder, the assembled model — and its weights on disk (Burnpack);
//! - [`ops`]: the operations the network calls (convolution, GroupNorm, Haar, ReLU, slicing,
//!   the detail stack), each dispatching to burn or to this project's CPU kernels;
//! - [`ops::cpu`]: the raw CPU kernels on plain slices and their helpers — the only room
//!   allowed `unsafe`.

pub mod fuser;
pub mod images;
pub mod network;
pub mod ops;
pub mod shipped;
pub mod training;
