//! A snapshot file's records (JSON objects, or CSV rows made into them) into the common
//! model: users with their e-mails, groups and their members.

use serde_json::{Map, Value};

use super::json_format::{Invalid, RawRecord};
use crate::connectors::kind::UserKeys;
use crate::model::{Email, MemberKind, MemberRef, SourceGroup, SourceUser, json_kind};

/// The keys of this kind's user records, for `idsync check`: any JSON key or CSV column.
pub(super) fn user_keys(_: &super::FileSettings) -> UserKeys<'static> {
    UserKeys::Any
}

/// A required, non-blank string field.
pub(super) fn required_string(record: &Map<String, Value>, field: &str) -> Result<String, String> {
    match record.get(field) {
        None | Some(Value::Null) => Err(format!("missing {field}")),
        Some(Value::String(text)) if text.trim().is_empty() => Err(format!("empty {field}")),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!(
            "{field} must be a string, not {}",
            json_kind(other)
        )),
    }
}

/// An optional string field; null and `""` are absent.
pub(super) fn optional_string(
    record: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!(
            "{field} must be a string, not {}",
            json_kind(other)
        )),
    }
}

/// An optional boolean field; null is absent, which gives `default`.
fn optional_bool(record: &Map<String, Value>, field: &str, default: bool) -> Result<bool, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => Err(format!(
            "{field} must be true or false, not {}",
            json_kind(other)
        )),
    }
}

pub(super) fn user_from_json(attributes: Map<String, Value>) -> Result<SourceUser, String> {
    // Fields are read in this order (the first missing one is the error), and the
    // attributes move in last.
    Ok(SourceUser {
        external_id: required_string(&attributes, "id")?,
        user_name: required_string(&attributes, "userName")?,
        given_name: optional_string(&attributes, "givenName")?,
        family_name: optional_string(&attributes, "familyName")?,
        display_name: optional_string(&attributes, "displayName")?,
        emails: emails_from_json(&attributes)?,
        active: optional_bool(&attributes, "active", true)?,
        attributes,
    })
}

/// `emails` (strings or `{value, type?, primary?}` objects) and `email` (the primary
/// address: marked primary in `emails` if listed there, else put first).
pub(super) fn emails_from_json(record: &Map<String, Value>) -> Result<Vec<Email>, String> {
    let mut emails = match record.get("emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| email_from_json(item).map_err(|e| format!("emails[{index}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(format!("emails must be an array, not {}", json_kind(other)));
        }
    };
    if let Some(primary) = optional_string(record, "email")? {
        for email in &mut emails {
            email.primary = email.value.eq_ignore_ascii_case(&primary);
        }
        if !emails.iter().any(|e| e.primary) {
            emails.insert(
                0,
                Email {
                    value: primary,
                    kind: None,
                    primary: true,
                },
            );
        }
    }
    Ok(emails)
}

pub(super) fn email_from_json(item: &Value) -> Result<Email, String> {
    match item {
        Value::String(value) if value.trim().is_empty() => Err("empty address".into()),
        Value::String(value) => Ok(Email {
            value: value.clone(),
            kind: None,
            primary: false,
        }),
        Value::Object(fields) => {
            let value = required_string(fields, "value")?;
            let kind = optional_string(fields, "type")?;
            let primary = optional_bool(fields, "primary", false)?;
            Ok(Email {
                value,
                kind,
                primary,
            })
        }
        other => Err(format!(
            "expected an address or a {{\"value\": ...}} object, not {}",
            json_kind(other)
        )),
    }
}

pub(super) fn group_from_json(raw: RawRecord) -> Result<SourceGroup, Invalid> {
    let RawRecord {
        at: _,
        attributes,
        members,
        bad_member,
    } = raw;
    let external_id = required_string(&attributes, "id").map_err(Invalid::at_record)?;
    if let Some(invalid) = bad_member {
        return Err(invalid);
    }
    let display_name = match attributes.get("displayName") {
        None | Some(Value::Null) if attributes.contains_key("name") => {
            required_string(&attributes, "name")
        }
        _ => required_string(&attributes, "displayName"),
    }
    .map_err(Invalid::at_record)?;
    let description = optional_string(&attributes, "description").map_err(Invalid::at_record)?;
    Ok(SourceGroup {
        external_id,
        display_name,
        description,
        members,
        attributes,
    })
}

pub(super) fn member_from_json(value: Value) -> Result<MemberRef, String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "expected a {{\"type\", \"id\"}} object, not {}",
            json_kind(&value)
        ));
    };
    let kind = match fields.get("type") {
        None | Some(Value::Null) => return Err("missing type".into()),
        Some(Value::String(text)) => {
            MemberKind::parse(&text.to_ascii_lowercase()).ok_or_else(|| {
                format!("unknown member type {text:?} (expected \"user\" or \"group\")")
            })?
        }
        Some(other) => return Err(format!("type must be a string, not {}", json_kind(other))),
    };
    let id = required_string(&fields, "id")?;
    Ok(MemberRef { kind, id })
}
