//! Searches and their answers, independent of the transport: a [`Query`] at study or series
//! level (patient name and ID, study date range, modality, accession number), the keys it
//! asks for, and a [`Match`] read back through a tag → text lookup that both transports supply
//! (a C-FIND identifier, a QIDO-RS JSON object).

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use serde::Serialize;

/// Query/retrieve level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Study,
    Series,
}

impl Level {
    /// The value of QueryRetrieveLevel (0008,0052).
    pub fn keyword(self) -> &'static str {
        match self {
            Level::Study => "STUDY",
            Level::Series => "SERIES",
        }
    }
}

/// A search. Empty fields match anything; names and IDs take DICOM wildcards (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub level: Level,
    pub patient_name: String,
    pub patient_id: String,
    /// `YYYYMMDD`, `YYYYMMDD-YYYYMMDD`, `-YYYYMMDD` or `YYYYMMDD-`.
    pub study_date: String,
    /// ModalitiesInStudy at study level, Modality at series level.
    pub modality: String,
    pub accession: String,
    /// Required at series level: the study whose series are listed.
    pub study_uid: String,
    /// Stop after this many matches (the server is asked to cancel the rest).
    pub max_results: usize,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            level: Level::Study,
            patient_name: String::new(),
            patient_id: String::new(),
            study_date: String::new(),
            modality: String::new(),
            accession: String::new(),
            study_uid: String::new(),
            max_results: 500,
        }
    }
}

impl Query {
    /// The keys of this query: (tag, VR, matching value — empty means "return it").
    pub fn keys(&self) -> Vec<(Tag, VR, String)> {
        let mut keys = vec![
            (tags::PATIENT_NAME, VR::PN, self.patient_name.clone()),
            (tags::PATIENT_ID, VR::LO, self.patient_id.clone()),
            (tags::STUDY_DATE, VR::DA, self.study_date.clone()),
            (tags::STUDY_DESCRIPTION, VR::LO, String::new()),
            (tags::ACCESSION_NUMBER, VR::SH, self.accession.clone()),
            (tags::STUDY_INSTANCE_UID, VR::UI, self.study_uid.clone()),
        ];
        match self.level {
            Level::Study => keys.extend([
                (tags::MODALITIES_IN_STUDY, VR::CS, self.modality.clone()),
                (tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, String::new()),
                (
                    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
                    VR::IS,
                    String::new(),
                ),
            ]),
            Level::Series => keys.extend([
                (tags::MODALITY, VR::CS, self.modality.clone()),
                (tags::SERIES_INSTANCE_UID, VR::UI, String::new()),
                (tags::SERIES_DESCRIPTION, VR::LO, String::new()),
                (tags::SERIES_NUMBER, VR::IS, String::new()),
                (
                    tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
                    VR::IS,
                    String::new(),
                ),
            ]),
        }
        keys
    }

    /// Refuses a series-level query without its study.
    pub fn check(&self) -> Result<(), String> {
        if self.level == Level::Series && self.study_uid.is_empty() {
            return Err("a series search needs the study's StudyInstanceUID".into());
        }
        if self.max_results == 0 {
            return Err("max results must be at least 1".into());
        }
        Ok(())
    }
}

/// One study or series found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Match {
    pub patient_name: String,
    pub patient_id: String,
    pub study_date: String,
    pub accession: String,
    /// ModalitiesInStudy for a study, Modality for a series.
    pub modality: String,
    /// StudyDescription for a study, SeriesDescription for a series.
    pub description: String,
    pub study_uid: String,
    pub series_uid: String,
    pub series_number: String,
    /// Series in the study (study level), when the server says.
    pub series_count: Option<u32>,
    /// Instances in the study or series, when the server says.
    pub instance_count: Option<u32>,
}

impl Match {
    /// Reads a match through `field`, which gives a tag's value as text (multi-values joined
    /// with `\`) or `None` when absent.
    pub fn read(level: Level, field: impl Fn(Tag) -> Option<String>) -> Result<Self, String> {
        let text = |tag| field(tag).unwrap_or_default().trim().to_string();
        let count = |tag| field(tag).and_then(|v| v.trim().parse::<u32>().ok());
        let study_uid = text(tags::STUDY_INSTANCE_UID);
        if study_uid.is_empty() {
            return Err("a match without StudyInstanceUID".into());
        }
        let mut found = Self {
            patient_name: text(tags::PATIENT_NAME),
            patient_id: text(tags::PATIENT_ID),
            study_date: text(tags::STUDY_DATE),
            accession: text(tags::ACCESSION_NUMBER),
            study_uid,
            ..Self::default()
        };
        match level {
            Level::Study => {
                found.modality = text(tags::MODALITIES_IN_STUDY);
                found.description = text(tags::STUDY_DESCRIPTION);
                found.series_count = count(tags::NUMBER_OF_STUDY_RELATED_SERIES);
                found.instance_count = count(tags::NUMBER_OF_STUDY_RELATED_INSTANCES);
            }
            Level::Series => {
                found.series_uid = text(tags::SERIES_INSTANCE_UID);
                if found.series_uid.is_empty() {
                    return Err("a series match without SeriesInstanceUID".into());
                }
                found.modality = text(tags::MODALITY);
                found.description = text(tags::SERIES_DESCRIPTION);
                found.series_number = text(tags::SERIES_NUMBER);
                found.instance_count = count(tags::NUMBER_OF_SERIES_RELATED_INSTANCES);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_query_needs_its_study() {
        let query = Query {
            level: Level::Series,
            ..Query::default()
        };
        assert!(query.check().is_err());
        assert!(
            query
                .keys()
                .iter()
                .any(|(tag, _, _)| *tag == tags::SERIES_INSTANCE_UID)
        );
    }

    #[test]
    fn matches_read_counts_and_refuse_missing_uids() {
        let found = Match::read(Level::Study, |tag| match tag {
            tags::STUDY_INSTANCE_UID => Some("1.2.3".into()),
            tags::NUMBER_OF_STUDY_RELATED_SERIES => Some(" 3 ".into()),
            tags::MODALITIES_IN_STUDY => Some("CT\\PT".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(found.series_count, Some(3));
        assert_eq!(found.modality, "CT\\PT");
        assert!(Match::read(Level::Study, |_| None).is_err());
    }
}
