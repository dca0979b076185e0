//! The fusion layer (burn): W-DUALMINE's building blocks. Only this layer imports burn.
//!
//! So far: the fixed Haar filters of the wavelet expert. The network, the Fuser engine and
//! training are issue 3 and 4 work still to come.

pub mod haar;
