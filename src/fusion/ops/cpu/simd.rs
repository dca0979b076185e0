//! Which vector instructions the CPU runs, and compiling a loop for the widest of them: the
//! elementwise loops of the CPU operations run 16 lanes wide where the CPU has AVX-512.

/// Whether this CPU runs AVX-512 (foundation) instructions.
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `f()`, compiled for AVX-512 where the CPU has it, else for the build's baseline (SSE2 on
/// x86-64). For the elementwise loops of the CPU kernels: inlined into this function, their
/// loops vectorise 16 lanes wide instead of 4 (or not at all where the baseline's code kept
/// them scalar). Every lane does the same IEEE operations as the scalar code (Rust never fuses
/// a product and a sum), so the values are the same bits either way.
#[inline(always)]
pub(crate) fn with_wide_vectors<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        /// `f()` with AVX-512 enabled for the code inlined into it.
        #[target_feature(enable = "avx512f")]
        fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if has_avx512() {
            // SAFETY: the CPU has AVX-512 (checked on the line above).
            return unsafe { wide(f) };
        }
    }
    f()
}
