//! Physical units of a series: Hounsfield for CT, SUVbw for PET where the tags allow,
//! counts for NM, and the conversion factor from rescaled values to those units.

use super::header::ImageHeader;
use super::tags::parse_datetime_seconds;
use crate::volume::{Modality, Units};

/// The units a series' rescaled values are shown in, and the factor that gets them there.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitConversion {
    pub units: Units,
    /// Multiplies the rescaled (modality LUT) value.
    pub factor: f64,
    /// Why SUV could not be computed, when it could not.
    pub note: Option<String>,
}

/// Decides units for a series from its first header and, for the PET reference time, the
/// earliest acquisition time of all its headers.
pub fn unit_conversion(modality: &Modality, headers: &[&ImageHeader]) -> UnitConversion {
    let plain = |units| UnitConversion {
        units,
        factor: 1.0,
        note: None,
    };
    let Some(first) = headers.first() else {
        return plain(Units::Signal);
    };
    let declared = first.pet.units.as_deref().map(str::to_ascii_uppercase);
    match (modality, declared.as_deref()) {
        (Modality::Ct, _) => plain(Units::Hounsfield),
        (_, Some("GML")) => plain(Units::SuvBw),
        (Modality::Pet | Modality::Nm, Some("BQML")) => match suv_factor(headers) {
            Ok(factor) => UnitConversion {
                units: Units::SuvBw,
                factor,
                note: None,
            },
            Err(reason) => UnitConversion {
                units: Units::BqPerMl,
                factor: 1.0,
                note: Some(format!("values in Bq/ml, not SUV: {reason}")),
            },
        },
        (_, Some("CNTS")) => plain(Units::Counts),
        (Modality::Nm, _) => plain(Units::Counts),
        (Modality::Pet, Some(other)) => plain(Units::Other(other.to_string())),
        _ => plain(Units::Signal),
    }
}

/// SUVbw = activity concentration × body weight (g) / decay-corrected injected dose (Bq).
///
/// With DecayCorrection START the images are decay corrected to the series start, so the
/// dose is decayed from injection to that time; with ADMIN they are corrected to the
/// injection time and the dose is used as given.
fn suv_factor(headers: &[&ImageHeader]) -> Result<f64, String> {
    let pet = &headers[0].pet;
    let weight = pet.patient_weight_kg.ok_or("PatientWeight is missing")?;
    let dose = pet
        .total_dose_bq
        .ok_or("RadionuclideTotalDose is missing")?;
    let correction = pet
        .decay_correction
        .as_deref()
        .unwrap_or("START")
        .to_ascii_uppercase();
    let decayed_dose = match correction.as_str() {
        "ADMIN" => dose,
        "START" => {
            let half_life = pet.half_life_s.ok_or("RadionuclideHalfLife is missing")?;
            let (inj_date, inj_time) = pet
                .injection
                .as_ref()
                .ok_or("the injection time is missing")?;
            let injection = parse_datetime_seconds(inj_date, inj_time)
                .ok_or("the injection time is unreadable")?;
            let start = series_start(headers).ok_or("the series time is missing")?;
            let elapsed = start - injection;
            if !(0.0..=7.0 * 86_400.0).contains(&elapsed) {
                return Err(format!("the series starts {elapsed:.0} s after injection"));
            }
            dose * (-(std::f64::consts::LN_2) * elapsed / half_life).exp()
        }
        other => return Err(format!("DecayCorrection {other} is not supported")),
    };
    Ok(weight * 1000.0 / decayed_dose)
}

/// Series start: SeriesDate/Time, else the earliest acquisition date/time.
fn series_start(headers: &[&ImageHeader]) -> Option<f64> {
    let pet = &headers[0].pet;
    if let Some((date, time)) = &pet.series
        && let Some(t) = parse_datetime_seconds(date, time)
    {
        return Some(t);
    }
    headers
        .iter()
        .filter_map(|h| h.pet.acquisition.as_ref())
        .filter_map(|(d, t)| parse_datetime_seconds(d, t))
        .min_by(f64::total_cmp)
}
