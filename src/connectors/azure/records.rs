//! Graph JSON to the common model: users, groups and member references.

use serde_json::{Map, Value};

use crate::connectors::kind::UserKeys;
use crate::connectors::records::{exact_text, flag_or, primary_only};
use crate::model::{MemberRef, SourceGroup, SourceUser};

/// The keys of this kind's user records, for `idsync check`: Microsoft Graph returns only
/// the properties in `$select`.
pub(super) fn user_keys(settings: &super::AzureSettings) -> UserKeys<'_> {
    UserKeys::Listed {
        keys: settings
            .user_properties
            .iter()
            .map(String::as_str)
            .collect(),
        hint: " (Microsoft Graph returns only the properties asked for: add it to \
               `azure.extra_user_attributes` if it exists)",
    }
}

/// `@odata.type` of a user member.
pub const USER_TYPE: &str = "#microsoft.graph.user";
/// `@odata.type` of a group member.
pub const GROUP_TYPE: &str = "#microsoft.graph.group";

/// A field's text as sent; None when absent or empty.
pub fn str_field(value: &Value, key: &str) -> Option<String> {
    exact_text(value.get(key))
}

/// The object's `id`, if it has a non-empty one.
pub fn id_of(value: &Value) -> Option<String> {
    str_field(value, "id")
}

/// Whether a delta entry (object or `members@delta` entry) says the thing is gone.
pub fn is_removed(value: &Value) -> bool {
    value.get("@removed").is_some_and(|v| !v.is_null())
}

/// Whether a user is a guest (`userType` `Guest`, in any case).
pub fn is_guest(value: &Value) -> bool {
    value
        .get("userType")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("Guest"))
}

/// Whether a delta object carries any property (besides `id` and annotations such as
/// `members@delta` or `@odata.type`).
pub fn has_properties(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|map| map.keys().any(|k| k != "id" && !k.contains('@')))
}

/// The object's properties as source attributes: annotations (`@odata.*`,
/// `members@delta`, `@removed`) and nulls left out, so that a listing (which sends nulls)
/// and a delta round (which leaves never-set properties out) give the same record.
pub fn attributes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map
            .into_iter()
            .filter(|(k, v)| !k.contains('@') && !v.is_null())
            .collect(),
        _ => Map::new(),
    }
}

/// A Graph user; `None` without an `id`. The user name is the `userPrincipalName`
/// (else `mail`, else the id), the primary email `mail`, `accountEnabled` the active flag.
pub fn to_user(value: Value) -> Option<SourceUser> {
    let external_id = id_of(&value)?;
    let user_name = str_field(&value, "userPrincipalName")
        .or_else(|| str_field(&value, "mail"))
        .unwrap_or_else(|| external_id.clone());
    let emails = primary_only(str_field(&value, "mail"), Some("work"));
    let active = flag_or(&value, "accountEnabled", true);
    Some(SourceUser {
        external_id,
        user_name,
        given_name: str_field(&value, "givenName"),
        family_name: str_field(&value, "surname"),
        display_name: str_field(&value, "displayName"),
        emails,
        active,
        attributes: attributes(value),
    })
}

/// A Graph group with its direct members.
pub fn to_group(
    id: String,
    properties: Map<String, Value>,
    members: Vec<MemberRef>,
) -> SourceGroup {
    let properties = attributes(Value::Object(properties));
    let display_name = exact_text(properties.get("displayName")).unwrap_or_else(|| id.clone());
    let description = exact_text(properties.get("description"));
    SourceGroup {
        external_id: id,
        display_name,
        description,
        members,
        attributes: properties,
    }
}

/// A member entry (`/members` item or `members@delta` entry) as a reference: users and
/// groups by `@odata.type`; devices, contacts and service principals are `None`.
pub fn member_ref(value: &Value) -> Option<MemberRef> {
    let id = id_of(value)?;
    let kind = value.get("@odata.type").and_then(Value::as_str)?;
    if kind.eq_ignore_ascii_case(USER_TYPE) {
        Some(MemberRef::user(id))
    } else if kind.eq_ignore_ascii_case(GROUP_TYPE) {
        Some(MemberRef::group(id))
    } else {
        None
    }
}
