//! Typed access to DICOM attributes. The `checked_` readers tell a missing value (`None`)
//! from one that is present but unreadable (an error naming the attribute); the plain ones
//! read both as `None`, for attributes that may be left out.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;

/// A text attribute, trimmed of padding; `None` when absent, empty or not text.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let element = obj.get(tag)?;
    let value = element.to_str().ok()?;
    let trimmed = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// A present attribute whose value does not read as the number(s) its VR holds: a UN value
/// the dictionary could not decode, text that is no decimal, too few values. Geometry and
/// units refuse the file on it rather than take a default or a wrong number.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub tag: Tag,
    /// The attribute's keyword (or its tag when the dictionary has none).
    pub name: String,
    /// What it holds and why that is no number.
    pub detail: String,
}

impl Unreadable {
    fn new(element: &InMemElement, why: &str) -> Self {
        let tag = element.tag();
        let name = StandardDataDictionary
            .by_tag(tag)
            .map_or_else(|| tag.to_string(), |e| e.alias().to_string());
        let shown: String = element
            .to_str()
            .map(|t| t.chars().take(40).collect())
            .unwrap_or_default();
        Self {
            tag,
            name,
            detail: format!("{} value {shown:?} {why}", element.vr()),
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.detail)
    }
}

/// VRs that hold numbers (text decimals and integers, binary integers and floats).
fn numeric(vr: VR) -> bool {
    matches!(
        vr,
        VR::DS
            | VR::IS
            | VR::FD
            | VR::FL
            | VR::US
            | VR::UL
            | VR::SS
            | VR::SL
            | VR::SV
            | VR::UV
            | VR::OD
            | VR::OF
    )
}

/// The element and its numbers, read by its VR: `Ok(None)` when absent or empty; an error
/// when present but not numbers (a non-numeric VR such as an undecoded UN, text that does
/// not parse, a value that is not finite).
fn read_numbers(
    obj: &InMemDicomObject,
    tag: Tag,
) -> Result<Option<(&InMemElement, Vec<f64>)>, Unreadable> {
    let Some(element) = obj.get(tag) else {
        return Ok(None);
    };
    let blank = element.to_str().is_ok_and(|t| {
        t.trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .is_empty()
    });
    if blank {
        return Ok(None);
    }
    if !numeric(element.vr()) {
        return Err(Unreadable::new(element, "is not a number"));
    }
    let values = element
        .to_multi_float64()
        .map_err(|_| Unreadable::new(element, "does not read as numbers"))?;
    if values.is_empty() {
        return Ok(None);
    }
    if !values.iter().all(|v| v.is_finite()) {
        return Err(Unreadable::new(element, "is not finite"));
    }
    Ok(Some((element, values)))
}

/// The first number of an attribute, checked as [`read_numbers`] does.
pub fn checked_number(obj: &InMemDicomObject, tag: Tag) -> Result<Option<f64>, Unreadable> {
    Ok(read_numbers(obj, tag)?.and_then(|(_, v)| v.first().copied()))
}

/// Exactly the first `N` numbers of an attribute; fewer is an error.
pub fn checked_fixed<const N: usize>(
    obj: &InMemDicomObject,
    tag: Tag,
) -> Result<Option<[f64; N]>, Unreadable> {
    let Some((element, values)) = read_numbers(obj, tag)? else {
        return Ok(None);
    };
    match values.get(..N).and_then(|v| <[f64; N]>::try_from(v).ok()) {
        Some(fixed) => Ok(Some(fixed)),
        None => Err(Unreadable::new(
            element,
            &format!("holds {} values where {N} are needed", values.len()),
        )),
    }
}

/// An integer attribute, checked: a fractional or non-numeric value is an error.
pub fn checked_integer(obj: &InMemDicomObject, tag: Tag) -> Result<Option<i64>, Unreadable> {
    let Some((element, values)) = read_numbers(obj, tag)? else {
        return Ok(None);
    };
    let value = values[0];
    if value.fract() != 0.0 || value.abs() > 9.0e15 {
        return Err(Unreadable::new(element, "is not an integer"));
    }
    Ok(Some(value as i64))
}

/// An integer attribute (US, UL, IS, SS…), `None` when absent or unreadable.
pub fn integer(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    checked_integer(obj, tag).ok().flatten()
}

/// The items of a sequence attribute (empty when absent).
pub fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

/// The first item of a sequence attribute.
pub fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    items(obj, tag).first()
}

/// Seconds since midnight of a DICOM TM value ("HHMMSS.FFFFFF", also "HH:MM:SS").
pub fn parse_time_seconds(value: &str) -> Option<f64> {
    let cleaned: String = value.trim().chars().filter(|c| *c != ':').collect();
    let (whole, fraction) = match cleaned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (cleaned.as_str(), ""),
    };
    if whole.len() < 2 || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> f64 {
        whole
            .get(range)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hours = field(0..2);
    let minutes = field(2..4);
    let seconds = field(4..6);
    let fraction = if fraction.is_empty() {
        0.0
    } else {
        format!("0.{fraction}").parse::<f64>().ok()?
    };
    (hours < 24.0 && minutes < 60.0 && seconds < 61.0)
        .then_some(hours * 3600.0 + minutes * 60.0 + seconds + fraction)
}

/// Seconds since 0001-01-01 of a DICOM DA + TM pair, or of a DT value ("YYYYMMDDHHMMSS.F").
pub fn parse_datetime_seconds(date: &str, time: &str) -> Option<f64> {
    let date = date.trim();
    if date.len() < 8 || !date[..8].chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let year: i64 = date[0..4].parse().ok()?;
    let month: i64 = date[4..6].parse().ok()?;
    let day: i64 = date[6..8].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) as f64 * 86_400.0 + parse_time_seconds(time)?)
}

/// Splits a DT value into its date and time parts.
pub fn split_datetime(value: &str) -> Option<(String, String)> {
    let value = value.trim();
    // Drop a trailing UTC offset ("+0100"): all times in one file share it.
    let value = value.split(['+', '-']).next().unwrap_or(value);
    (value.len() >= 8).then(|| (value[..8].to_string(), value[8..].to_string()))
}

/// Days from 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates() {
        assert_eq!(parse_time_seconds("092200.000000"), Some(33720.0));
        assert_eq!(parse_time_seconds("13:06:28.5"), Some(47188.5));
        assert_eq!(parse_time_seconds("12"), Some(43200.0));
        assert_eq!(parse_time_seconds("xx"), None);
        let a = parse_datetime_seconds("20181115", "235959").expect("valid");
        let b = parse_datetime_seconds("20181116", "000001").expect("valid");
        assert_eq!(b - a, 2.0);
        assert_eq!(
            split_datetime("20181115092200.000000+0100"),
            Some(("20181115".into(), "092200.000000".into()))
        );
    }
}
