//! Building blocks of the DICOM writers: one data element, a sequence, and DS (decimal
//! string) values that fit their 16 characters without losing precision.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;

/// One data element.
pub(super) fn element(
    tag: Tag,
    vr: VR,
    value: impl Into<PrimitiveValue>,
) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, value.into())
}

/// A DS value (at most 16 characters) keeping as many significant digits as fit: fixed
/// notation for ordinary magnitudes, exponent notation for tiny or huge ones (a rescale
/// slope of 1.5e-5 written as "0.000015" would lose 2 % of every value).
pub(super) fn decimal(value: f64) -> String {
    if !value.is_finite() || value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs();
    if (1e-3..1e12).contains(&magnitude) {
        let whole_digits = (magnitude.log10().floor() as i64 + 1).max(1) as usize;
        let sign = usize::from(value < 0.0);
        let decimals = 16usize.saturating_sub(whole_digits + 1 + sign).min(10);
        let text = format!("{value:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        if text.len() <= 16 {
            return text;
        }
    }
    for digits in (1..=10).rev() {
        let text = format!("{value:.digits$e}");
        if text.len() <= 16 {
            return text;
        }
    }
    format!("{value:e}").chars().take(16).collect()
}

/// Several DS values, backslash-separated (a multi-valued DS).
pub(super) fn decimals(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| decimal(*v))
        .collect::<Vec<_>>()
        .join("\\")
}

/// A sequence element of `items`.
pub(super) fn sequence(
    tag: dicom_core::Tag,
    items: Vec<InMemDicomObject>,
) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_strings_fit_ds_and_keep_precision() {
        for value in [
            1.0 / 65535.0,
            -881.3125,
            0.976_562_5,
            123_456_789.123,
            3.0e-9,
            -4.2e15,
        ] {
            let text = decimal(value);
            assert!(text.len() <= 16, "{text}");
            let back: f64 = text.parse().expect("a number");
            assert!(((back - value) / value).abs() < 1e-8, "{value} → {text}");
        }
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(2.5), "2.5");
        assert_eq!(decimal(-1.0), "-1");
    }
}
