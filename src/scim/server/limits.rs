//! Size and content limits on what a client may store, checked the same way before either
//! backend sees the data, so SQLite and PostgreSQL give the same answer to the same input:
//!
//! - no string may hold U+0000 (PostgreSQL `text` cannot store it; SQLite could, which
//!   made the two backends disagree): 400 `invalidValue`;
//! - the names the mirror and the target index (`userName`, `displayName`, `externalId`,
//!   and every `value` of a multi-valued attribute, such as an email a mapping may use as
//!   a user name) hold at most [`MAX_IDENTIFIER_CHARS`] characters: a PostgreSQL B-tree
//!   entry holds at most 2704 bytes, and 512 characters of up to 4 bytes each fit;
//! - every string holds at most `max_string_chars` (identifiers: the smaller of both);
//! - a multi-valued attribute holds at most `max_values` entries (a group's `members`
//!   excepted: groups of tens of thousands of members are normal);
//! - the resource without its members serialises to at most `max_resource_bytes`
//!   (413, naming the limit).

use serde_json::Value;

use crate::config::ResourceLimits;
use crate::scim::error::{ScimError, ScimType};

/// The longest identifier (see the module documentation for why 512).
pub const MAX_IDENTIFIER_CHARS: usize = 512;

/// Attributes held to [`MAX_IDENTIFIER_CHARS`] at the top level of a resource.
const IDENTIFIERS: [&str; 3] = ["userName", "displayName", "externalId"];

fn nul_error(path: &str) -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidValue,
        format!("`{path}` contains the character U+0000 (NUL), which is not accepted"),
    )
}

/// 400 when any string or key of `value` holds U+0000.
pub fn reject_nul(value: &Value) -> Result<(), ScimError> {
    fn walk(value: &Value, path: &mut String) -> Result<(), ScimError> {
        match value {
            Value::String(s) if s.contains('\0') => Err(nul_error(path_or_body(path))),
            Value::Array(items) => items.iter().try_for_each(|item| walk(item, path)),
            Value::Object(map) => {
                for (key, item) in map {
                    if key.contains('\0') {
                        return Err(nul_error("an attribute name"));
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

fn path_or_body(path: &str) -> &str {
    if path.is_empty() { "the body" } else { path }
}

/// 400 when a raw request target (path and query, percent-encoded) decodes to U+0000.
pub fn reject_nul_in_target(target: &str) -> Result<(), ScimError> {
    let lower = target.to_ascii_lowercase();
    if lower.contains("%00") || target.contains('\0') {
        Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "the request URL contains the character U+0000 (%00), which is not accepted",
        ))
    } else {
        Ok(())
    }
}

/// Counts bytes written, to size a resource without building its text.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn serialized_len(value: &Value) -> usize {
    let mut counter = Counter(0);
    // Writing a Value into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Checks a resource as it would be stored (after normalisation, before the database).
pub fn check_resource(resource: &Value, limits: &ResourceLimits) -> Result<(), ScimError> {
    reject_nul(resource)?;
    let Some(object) = resource.as_object() else {
        return Ok(());
    };
    let mut bytes = 2;
    for (key, value) in object {
        let is_members = key.eq_ignore_ascii_case("members");
        if !is_members {
            bytes += key.len() + 4 + serialized_len(value);
        }
        if IDENTIFIERS.iter().any(|i| i.eq_ignore_ascii_case(key)) {
            check_identifier(key, value)?;
        }
        check_value(key, value, limits, is_members)?;
    }
    if bytes > limits.max_resource_bytes {
        return Err(ScimError::payload_too_large(format!(
            "the resource is {bytes} bytes without its members, over the limit of {} bytes \
             (max_resource_bytes)",
            limits.max_resource_bytes
        )));
    }
    Ok(())
}

fn check_identifier(path: &str, value: &Value) -> Result<(), ScimError> {
    if let Value::String(s) = value {
        let chars = s.chars().count();
        if chars > MAX_IDENTIFIER_CHARS {
            return Err(ScimError::bad_request(
                ScimType::InvalidValue,
                format!(
                    "`{path}` is {chars} characters long, over the limit of \
                     {MAX_IDENTIFIER_CHARS} for names and identifiers"
                ),
            ));
        }
    }
    Ok(())
}

fn check_value(
    path: &str,
    value: &Value,
    limits: &ResourceLimits,
    is_members: bool,
) -> Result<(), ScimError> {
    match value {
        Value::String(s) => {
            // Counting characters only matters when the bytes could be over.
            if s.len() > limits.max_string_chars {
                let chars = s.chars().count();
                if chars > limits.max_string_chars {
                    return Err(ScimError::bad_request(
                        ScimType::InvalidValue,
                        format!(
                            "`{path}` is {chars} characters long, over the limit of {} \
                             (max_string_length)",
                            limits.max_string_chars
                        ),
                    ));
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            if !is_members && items.len() > limits.max_values {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!(
                        "`{path}` has {} values, over the limit of {} (max_values_per_attribute)",
                        items.len(),
                        limits.max_values
                    ),
                ));
            }
            for item in items {
                // The `value` of a multi-valued entry is what mappings key on.
                if let Some(entry) = item.as_object()
                    && let Some((key, inner)) =
                        entry.iter().find(|(k, _)| k.eq_ignore_ascii_case("value"))
                {
                    check_identifier(&format!("{path}.{key}"), inner)?;
                }
                check_value(path, item, limits, false)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_value(&format!("{path}.{key}"), item, limits, false)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(e: ScimError) -> (u16, String) {
        (e.status, e.client_detail().to_string())
    }

    #[test]
    fn nul_is_refused_anywhere_in_a_body() {
        let (status, text) =
            detail(reject_nul(&json!({"name": {"givenName": "a\u{0}b"}})).unwrap_err());
        assert_eq!(status, 400);
        assert!(
            text.contains("`name.givenName` contains the character U+0000"),
            "{text}"
        );
        assert!(reject_nul(&json!({"a\u{0}": 1})).is_err());
        assert!(reject_nul(&json!(["x", {"y": ["\u{0}"]}])).is_err());
        assert!(reject_nul(&json!({"a": "b", "n": [1, true, null]})).is_ok());
        assert!(reject_nul_in_target("/Users?filter=userName%20eq%20%22a%00%22").is_err());
        assert!(reject_nul_in_target("/Users/%2500").is_ok());
    }

    #[test]
    fn strings_values_and_sizes_are_limited() {
        let limits = ResourceLimits {
            max_string_chars: 10,
            max_values: 2,
            max_resource_bytes: 200,
        };
        let long_name = "é".repeat(MAX_IDENTIFIER_CHARS + 1);
        let (status, text) =
            detail(check_resource(&json!({"userName": long_name}), &limits).unwrap_err());
        assert_eq!(status, 400);
        assert_eq!(
            text,
            "`userName` is 513 characters long, over the limit of 512 for names and identifiers"
        );
        assert!(check_resource(&json!({"userName": "a".repeat(10)}), &limits).is_ok());
        let (_, text) = detail(
            check_resource(&json!({"name": {"formatted": "x".repeat(11)}}), &limits).unwrap_err(),
        );
        assert!(text.contains("`name.formatted` is 11 characters long, over the limit of 10"));
        let (_, text) = detail(
            check_resource(
                &json!({"emails": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
                &limits,
            )
            .unwrap_err(),
        );
        assert!(
            text.contains("`emails` has 3 values, over the limit of 2"),
            "{text}"
        );
        // Members are exempt from the count and from the size.
        let members: Vec<Value> = (0..50).map(|i| json!({"value": format!("u{i}")})).collect();
        assert!(check_resource(&json!({"displayName": "g", "members": members}), &limits).is_ok());
        let big = json!({"a": "x".repeat(10), "b": "x".repeat(10), "c": "x".repeat(10),
            "d": "x".repeat(10), "e": "x".repeat(10), "f": "x".repeat(10), "g": "x".repeat(10),
            "h": "x".repeat(10)});
        let big = json!({"x": big, "y": big});
        let (status, text) = detail(check_resource(&big, &limits).unwrap_err());
        assert_eq!(status, 413);
        assert!(
            text.contains("over the limit of 200 bytes (max_resource_bytes)"),
            "{text}"
        );
    }
}
