//! Tensor values brought to the host: a scalar (a loss term, a stored gain) and, for tests, a
//! whole tensor.

use burn::tensor::Tensor;

/// The first value of a tensor on the host (a loss term, a stored scalar); NaN when it has
/// none.
pub(crate) fn first_value(t: Tensor<1>) -> f32 {
    t.into_data()
        .try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN)
}

/// A tensor's values on the host, for tests.
#[cfg(test)]
pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}
