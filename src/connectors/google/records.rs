//! Directory API users, groups and members into the common model.

use std::collections::HashSet;

use serde_json::Value;

use super::*;
use crate::connectors::kind::UserKeys;
use crate::connectors::records::{given_and_family, group_of_object, object_members, trimmed_text};
use crate::model::{Email, MemberRef, SourceGroup, SourceUser};

/// Google Directory API `User` keys (`projection=full`).
const USER_KEYS: &[&str] = &[
    "id",
    "kind",
    "etag",
    "primaryEmail",
    "name",
    "isAdmin",
    "isDelegatedAdmin",
    "lastLoginTime",
    "creationTime",
    "deletionTime",
    "agreedToTerms",
    "suspended",
    "suspensionReason",
    "archived",
    "changePasswordAtNextLogin",
    "ipWhitelisted",
    "emails",
    "externalIds",
    "relations",
    "addresses",
    "organizations",
    "phones",
    "languages",
    "aliases",
    "nonEditableAliases",
    "customerId",
    "orgUnitPath",
    "isMailboxSetup",
    "isEnrolledIn2Sv",
    "isEnforcedIn2Sv",
    "includeInGlobalAddressList",
    "thumbnailPhotoUrl",
    "thumbnailPhotoEtag",
    "customSchemas",
    "recoveryEmail",
    "recoveryPhone",
    "gender",
    "keywords",
    "locations",
    "ims",
    "websites",
    "posixAccounts",
    "sshPublicKeys",
    "notes",
];

/// The keys of this kind's user records, for `idsync check`.
pub(super) fn user_keys(_: &super::GoogleSettings) -> UserKeys<'static> {
    UserKeys::listed(
        USER_KEYS,
        " (custom schema fields are read as `customSchemas.<schema>.<field>`)",
    )
}

/// A field's text, trimmed; None when absent or blank.
pub(super) fn str_field(value: &Value, key: &str) -> Option<String> {
    trimmed_text(value.get(key))
}

pub(super) fn bool_field(value: &Value, key: &str) -> bool {
    match value.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Maps one `users.list` item. `Ok(None)`: left out (suspended or archived by setting, or
/// deleted); `Err`: the item is unusable, which fails the read.
pub(super) fn to_user(
    value: Value,
    include_suspended: bool,
    include_archived: bool,
) -> Result<Option<SourceUser>, String> {
    let external_id = str_field(&value, "id").ok_or("a user without `id`")?;
    let user_name = str_field(&value, "primaryEmail")
        .ok_or_else(|| format!("user {external_id} has no `primaryEmail`"))?;
    let suspended = bool_field(&value, "suspended");
    let archived = bool_field(&value, "archived");
    if value.get("deletionTime").is_some_and(|t| !t.is_null())
        || (suspended && !include_suspended)
        || (archived && !include_archived)
    {
        return Ok(None);
    }
    let name = value.get("name").cloned().unwrap_or(Value::Null);
    let given_name = str_field(&name, "givenName");
    let family_name = str_field(&name, "familyName");
    let mut emails = vec![Email {
        value: user_name.clone(),
        kind: None,
        primary: true,
    }];
    if let Some(Value::Array(items)) = value.get("emails") {
        for item in items {
            let Some(address) = str_field(item, "address") else {
                continue;
            };
            if emails
                .iter()
                .any(|e| e.value.eq_ignore_ascii_case(&address))
            {
                continue;
            }
            let kind = match str_field(item, "type").as_deref() {
                Some("custom") => str_field(item, "customType"),
                other => other.map(str::to_string),
            };
            emails.push(Email {
                value: address,
                kind,
                primary: false,
            });
        }
    }
    let attributes = object_members(value);
    Ok(Some(SourceUser {
        display_name: str_field(&name, "fullName")
            .or_else(|| given_and_family(&given_name, &family_name)),
        external_id,
        user_name,
        given_name,
        family_name,
        emails,
        active: !suspended && !archived,
        attributes,
    }))
}

/// Maps one `members.list` item to a member of this read, or counts why it is left out.
pub(super) fn to_member(
    item: &Value,
    user_ids: &HashSet<String>,
    group_ids: &HashSet<String>,
    left_out: &mut LeftOut,
) -> Option<MemberRef> {
    let id = str_field(item, "id");
    match (str_field(item, "type").as_deref(), id) {
        (Some("USER"), Some(id)) if user_ids.contains(&id) => Some(MemberRef::user(id)),
        (Some("GROUP"), Some(id)) if group_ids.contains(&id) => Some(MemberRef::group(id)),
        (Some("USER"), _) => {
            left_out.users += 1;
            None
        }
        (Some("GROUP"), _) => {
            left_out.groups += 1;
            None
        }
        (Some("CUSTOMER"), _) => {
            left_out.customer += 1;
            None
        }
        _ => {
            left_out.other += 1;
            None
        }
    }
}

/// A member entry of type USER or GROUP as a member reference, whoever it is (incremental
/// reads: the mirror drops members it does not hold).
pub(super) fn any_member(item: &Value) -> Option<MemberRef> {
    let id = str_field(item, "id")?;
    match str_field(item, "type").as_deref() {
        Some("USER") => Some(MemberRef::user(id)),
        Some("GROUP") => Some(MemberRef::group(id)),
        _ => None,
    }
}

pub(super) fn to_group(id: String, value: Value, members: Vec<MemberRef>) -> SourceGroup {
    let display_name = str_field(&value, "name")
        .or_else(|| str_field(&value, "email"))
        .unwrap_or_else(|| id.clone());
    let description = str_field(&value, "description");
    group_of_object(id, display_name, description, value, members)
}
