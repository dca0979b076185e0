//! DIMSE command sets (PS3.7 §9–10): the group-0000 elements that head every message, always
//! in implicit VR little endian, encoded and decoded here byte by byte (a command set is a
//! flat list of short elements; a general dataset parser would add nothing but ways to fail).

use crate::pacs::Fault;

/// Command fields (0000,0100) this client sends or answers.
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// Command-group element numbers (group 0000).
mod element {
    pub const GROUP_LENGTH: u16 = 0x0000;
    pub const AFFECTED_SOP_CLASS: u16 = 0x0002;
    pub const COMMAND_FIELD: u16 = 0x0100;
    pub const MESSAGE_ID: u16 = 0x0110;
    pub const RESPONDING_TO: u16 = 0x0120;
    pub const MOVE_DESTINATION: u16 = 0x0600;
    pub const PRIORITY: u16 = 0x0700;
    pub const DATA_SET_TYPE: u16 = 0x0800;
    pub const STATUS: u16 = 0x0900;
    pub const ERROR_COMMENT: u16 = 0x0902;
    pub const AFFECTED_SOP_INSTANCE: u16 = 0x1000;
    pub const REMAINING: u16 = 0x1020;
    pub const COMPLETED: u16 = 0x1021;
    pub const FAILED: u16 = 0x1022;
    pub const WARNING: u16 = 0x1023;
}

/// (0000,0800) value meaning "no dataset follows".
const NO_DATA_SET: u16 = 0x0101;
/// (0000,0800) value for "a dataset follows" (any other value means the same).
const DATA_SET_PRESENT: u16 = 0x0000;

/// One DIMSE command set: the fields this client uses, everything else ignored on reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub field: u16,
    pub sop_class: String,
    pub message_id: u16,
    pub responding_to: u16,
    pub sop_instance: String,
    pub move_destination: String,
    pub has_data_set: bool,
    pub status: u16,
    pub error_comment: String,
    /// Sub-operation counts of C-GET/C-MOVE responses (remaining, completed, failed, warning).
    pub remaining: Option<u16>,
    pub completed: Option<u16>,
    pub failed: Option<u16>,
    pub warning: Option<u16>,
}

impl Command {
    /// A request: `field` on `sop_class`, with message id `message_id`.
    pub fn request(field: u16, sop_class: &str, message_id: u16, has_data_set: bool) -> Self {
        Self {
            field,
            sop_class: sop_class.to_string(),
            message_id,
            has_data_set,
            ..Self::default()
        }
    }

    /// The response to `request` with `status` (no dataset).
    pub fn response_to(request: &Command, field: u16, status: u16) -> Self {
        Self {
            field,
            sop_class: request.sop_class.clone(),
            responding_to: request.message_id,
            sop_instance: request.sop_instance.clone(),
            status,
            ..Self::default()
        }
    }

    /// The command set's bytes (implicit VR little endian, group length first).
    pub fn encode(&self) -> Vec<u8> {
        let is_request = self.field & 0x8000 == 0 && self.field != field::C_CANCEL_RQ;
        let mut body = Vec::new();
        if !self.sop_class.is_empty() {
            put_text(&mut body, element::AFFECTED_SOP_CLASS, &self.sop_class, 0);
        }
        put_u16(&mut body, element::COMMAND_FIELD, self.field);
        if is_request {
            put_u16(&mut body, element::MESSAGE_ID, self.message_id);
        } else {
            put_u16(&mut body, element::RESPONDING_TO, self.responding_to);
        }
        if !self.move_destination.is_empty() {
            put_text(
                &mut body,
                element::MOVE_DESTINATION,
                &self.move_destination,
                b' ',
            );
        }
        if is_request && self.field != field::C_ECHO_RQ {
            put_u16(&mut body, element::PRIORITY, 0); // medium
        }
        let data_set_type = if self.has_data_set {
            DATA_SET_PRESENT
        } else {
            NO_DATA_SET
        };
        put_u16(&mut body, element::DATA_SET_TYPE, data_set_type);
        if !is_request {
            put_u16(&mut body, element::STATUS, self.status);
        }
        if !self.sop_instance.is_empty() {
            put_text(
                &mut body,
                element::AFFECTED_SOP_INSTANCE,
                &self.sop_instance,
                0,
            );
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        put_element(
            &mut out,
            element::GROUP_LENGTH,
            &(body.len() as u32).to_le_bytes(),
        );
        out.extend_from_slice(&body);
        out
    }

    /// Reads a command set; elements of other groups or unknown numbers are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Self, Fault> {
        let malformed = |what: &str| Fault::Protocol(format!("malformed command set: {what}"));
        let mut command = Self::default();
        let mut rest = bytes;
        let mut has_field = false;
        let mut data_set_type = NO_DATA_SET;
        while !rest.is_empty() {
            if rest.len() < 8 {
                return Err(malformed("truncated element header"));
            }
            let group = u16::from_le_bytes([rest[0], rest[1]]);
            let number = u16::from_le_bytes([rest[2], rest[3]]);
            let length = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let value = rest
                .get(8..8 + length)
                .ok_or_else(|| malformed("an element runs past the end"))?;
            rest = &rest[8 + length..];
            if group != 0 {
                continue;
            }
            let as_u16 = || -> Result<u16, Fault> {
                match value {
                    [a, b] => Ok(u16::from_le_bytes([*a, *b])),
                    _ => Err(malformed("a US element is not 2 bytes")),
                }
            };
            match number {
                element::AFFECTED_SOP_CLASS => command.sop_class = text(value),
                element::COMMAND_FIELD => {
                    command.field = as_u16()?;
                    has_field = true;
                }
                element::MESSAGE_ID => command.message_id = as_u16()?,
                element::RESPONDING_TO => command.responding_to = as_u16()?,
                element::MOVE_DESTINATION => command.move_destination = text(value),
                element::DATA_SET_TYPE => data_set_type = as_u16()?,
                element::STATUS => command.status = as_u16()?,
                element::ERROR_COMMENT => command.error_comment = text(value),
                element::AFFECTED_SOP_INSTANCE => command.sop_instance = text(value),
                element::REMAINING => command.remaining = Some(as_u16()?),
                element::COMPLETED => command.completed = Some(as_u16()?),
                element::FAILED => command.failed = Some(as_u16()?),
                element::WARNING => command.warning = Some(as_u16()?),
                _ => {}
            }
        }
        if !has_field {
            return Err(malformed("no command field (0000,0100)"));
        }
        command.has_data_set = data_set_type != NO_DATA_SET;
        Ok(command)
    }
}

/// What a response status (0000,0900) means (PS3.7 Annex C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Success,
    Pending,
    Cancelled,
    Warning,
    Failure,
}

pub fn status_kind(status: u16) -> StatusKind {
    match status {
        0x0000 => StatusKind::Success,
        0xFF00 | 0xFF01 => StatusKind::Pending,
        0xFE00 => StatusKind::Cancelled,
        0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusKind::Warning,
        _ => StatusKind::Failure,
    }
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .trim_end_matches(['\0', ' '])
        .trim_start()
        .to_string()
}

fn put_element(out: &mut Vec<u8>, number: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&number.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

fn put_u16(out: &mut Vec<u8>, number: u16, value: u16) {
    put_element(out, number, &value.to_le_bytes());
}

/// A UI (padded with NUL) or AE (padded with a space) value, even length.
fn put_text(out: &mut Vec<u8>, number: u16, value: &str, pad: u8) {
    let mut bytes = value.as_bytes().to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(pad);
    }
    put_element(out, number, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_request_survives_encoding() {
        let mut request = Command::request(field::C_STORE_RQ, "1.2.840.10008.5.1.4.1.1.2", 7, true);
        request.sop_instance = "1.2.3".into();
        let bytes = request.encode();
        // Group length counts everything after its own 12 bytes.
        let declared = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!(declared, bytes.len() - 12);
        let back = Command::decode(&bytes).unwrap();
        assert_eq!(back.field, field::C_STORE_RQ);
        assert_eq!(back.message_id, 7);
        assert_eq!(back.sop_instance, "1.2.3");
        assert_eq!(back.sop_class, "1.2.840.10008.5.1.4.1.1.2");
        assert!(back.has_data_set);
    }

    #[test]
    fn a_response_carries_status_and_no_data() {
        let request = Command::request(field::C_ECHO_RQ, "1.2.840.10008.1.1", 3, false);
        let response = Command::response_to(&request, field::C_ECHO_RSP, 0);
        let back = Command::decode(&response.encode()).unwrap();
        assert_eq!(back.responding_to, 3);
        assert_eq!(back.status, 0);
        assert!(!back.has_data_set);
        assert_eq!(status_kind(0xFF00), StatusKind::Pending);
        assert_eq!(status_kind(0xA701), StatusKind::Failure);
    }

    #[test]
    fn truncated_or_fieldless_command_sets_are_refused() {
        let bytes = Command::request(field::C_ECHO_RQ, "1.2", 1, false).encode();
        assert!(Command::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Command::decode(&bytes[..5]).is_err());
        let mut no_field = Vec::new();
        put_u16(&mut no_field, element::MESSAGE_ID, 1);
        assert!(Command::decode(&no_field).is_err());
    }
}
