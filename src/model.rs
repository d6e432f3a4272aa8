//! The common model: users and groups as every source (pulled or pushed) is normalised to
//! before they land in the mirror. Nothing is filtered here; the raw source attributes ride
//! along untouched in `attributes` so that mappings can read them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One email address of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    /// `work`, `home`, ... as the source labels it.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

/// A user as one source knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceUser {
    /// Stable id in the source (Graph object id, Okta id, LDAP entryUUID, SCIM id, ...).
    pub external_id: String,
    pub user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    pub active: bool,
    /// The untouched source attributes.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

impl SourceUser {
    /// The primary email, else the first one.
    pub fn primary_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .or_else(|| self.emails.first())
            .map(|e| e.value.as_str())
    }
}

/// Whether a group member is a user or a (nested) group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Group => "group",
        }
    }

    pub fn parse(text: &str) -> Option<MemberKind> {
        match text {
            "user" => Some(MemberKind::User),
            "group" => Some(MemberKind::Group),
            _ => None,
        }
    }
}

/// A reference from a group to one of its members, by the member's external id in the
/// same source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberRef {
    #[serde(rename = "type")]
    pub kind: MemberKind,
    pub id: String,
}

impl MemberRef {
    pub fn user(id: impl Into<String>) -> Self {
        MemberRef {
            kind: MemberKind::User,
            id: id.into(),
        }
    }

    pub fn group(id: impl Into<String>) -> Self {
        MemberRef {
            kind: MemberKind::Group,
            id: id.into(),
        }
    }
}

/// A group as one source knows it, with its direct members (users and groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceGroup {
    pub external_id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberRef>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

/// A stable 128-bit content hash, hex encoded, of anything serialisable. serde_json's map
/// is ordered (no `preserve_order`), so equal values hash equal.
pub fn content_hash<T: Serialize>(value: &T) -> String {
    hash_text(content_hash_value(value))
}

/// [`content_hash`] as a number: for holding many of them compactly.
pub fn content_hash_value<T: Serialize>(value: &T) -> u128 {
    hash_value(&serde_json::to_vec(value).unwrap_or_default())
}

/// Whether `stored`, a hash as the target stores it ([`hash_text`]), is `hash`.
pub fn hash_is(stored: &str, hash: u128) -> bool {
    stored.len() == 32 && u128::from_str_radix(stored, 16) == Ok(hash)
}

/// The content hash of a record already serialised, as a number (what [`hash_text`]
/// writes out): for holding many of them compactly.
pub fn hash_value(json: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(json)
}

/// A content hash as the mirror and the target store it: 32 hex digits.
pub fn hash_text(hash: u128) -> String {
    format!("{hash:032x}")
}

/// "a string", "an array", … : the JSON type of a value, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Case-folded key used for uniqueness of user and group names in the target.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_hash_matches_only_its_own_number() {
        let hash = content_hash_value(&("ann", 1));
        assert_eq!(content_hash(&("ann", 1)), hash_text(hash));
        assert!(hash_is(&hash_text(hash), hash));
        assert!(!hash_is(&hash_text(hash), hash ^ 1));
        // What an empty or hand-edited column holds reads as changed, not as a match.
        assert!(!hash_is("", 0));
        assert!(!hash_is("0", 0));
        assert!(!hash_is("not a hash", 0));
    }

    #[test]
    fn primary_email_prefers_flagged_one() {
        let user = SourceUser {
            external_id: "1".into(),
            user_name: "a".into(),
            given_name: None,
            family_name: None,
            display_name: None,
            emails: vec![
                Email {
                    value: "home@example.com".into(),
                    kind: Some("home".into()),
                    primary: false,
                },
                Email {
                    value: "work@example.com".into(),
                    kind: Some("work".into()),
                    primary: true,
                },
            ],
            active: true,
            attributes: Map::new(),
        };
        assert_eq!(user.primary_email(), Some("work@example.com"));
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = MemberRef::user("u1");
        let b = MemberRef::user("u2");
        assert_eq!(content_hash(&a), content_hash(&a.clone()));
        assert_ne!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a).len(), 32);
    }

    #[test]
    fn name_key_folds_case_and_space() {
        assert_eq!(name_key("  Alice@Example.COM "), "alice@example.com");
    }
}
