//! Typed, forgiving access to DICOM attributes: a missing or malformed value reads as `None`.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

/// A text attribute, trimmed of padding; `None` when absent, empty or not text.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let element = obj.get(tag)?;
    let value = element.to_str().ok()?;
    let trimmed = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// All numbers of a decimal/float attribute (DS, FD, FL, IS…); `None` when absent or not
/// numeric or when any value is not finite.
pub fn numbers(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let values = obj.get(tag)?.to_multi_float64().ok()?;
    (values.iter().all(|v| v.is_finite()) && !values.is_empty()).then_some(values)
}

/// The first number of an attribute.
pub fn number(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    numbers(obj, tag)?.first().copied()
}

/// Exactly `N` numbers, or `None`.
pub fn fixed<const N: usize>(obj: &InMemDicomObject, tag: Tag) -> Option<[f64; N]> {
    let values = numbers(obj, tag)?;
    values.get(..N)?.try_into().ok()
}

/// An integer attribute (US, UL, IS, SS…).
pub fn integer(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
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
