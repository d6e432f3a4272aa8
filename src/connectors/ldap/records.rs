//! Directory entries into the common model through a [`Profile`]: the external id
//! (`objectGUID` rendered as a GUID, `entryUUID`), names, mail, whether the account is
//! active, and every text attribute kept for the mapping.

use serde_json::{Map, Value};

use super::directory::Entry;
use super::guid;
use super::presets::{Inactive, Profile};
use crate::connectors::kind::UserKeys;
use crate::model::{Email, MemberRef, SourceGroup, SourceUser};

/// `userAccountControl`'s ACCOUNTDISABLE bit.
const ACCOUNT_DISABLE: i64 = 0x2;

/// User records hold the entry's attributes, whichever the schema has: any key may be
/// there.
pub(super) fn user_keys(_: &super::LdapSettings) -> UserKeys<'static> {
    UserKeys::Any
}

/// The entry's external id: an `objectGUID` in Microsoft's text form, any other binary
/// id in lower-case hex, a text id as it is.
pub(super) fn external_id(entry: &Entry, profile: &Profile) -> Option<String> {
    let bytes = entry.first_bytes(&profile.id)?;
    if profile.id_is_guid() {
        return guid::render(bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.is_empty() => Some(text.to_owned()),
        Ok(_) => None,
        Err(_) => Some(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// Whether AD's `userAccountControl` value has ACCOUNTDISABLE set. The attribute is a
/// signed 32-bit integer, so large flag sets arrive negative.
pub(super) fn account_disabled(value: &str) -> bool {
    value
        .trim()
        .parse::<i64>()
        .is_ok_and(|flags| flags & ACCOUNT_DISABLE != 0)
}

/// Whether the entry is an active account by the profile's rule; `matched_inactive`
/// tells whether it matched `inactive_filter` (that rule's search is the server's).
pub(super) fn is_active(entry: &Entry, profile: &Profile, matched_inactive: bool) -> bool {
    match &profile.inactive {
        Inactive::AccountControl => !entry
            .first("userAccountControl")
            .is_some_and(account_disabled),
        Inactive::Present(name) => !entry.has(name),
        Inactive::Filter(_) => !matched_inactive,
    }
}

/// Maps a user entry (its values move into the record); `None` without an id or user
/// name.
pub(super) fn to_user(
    entry: Entry,
    profile: &Profile,
    matched_inactive: bool,
) -> Option<SourceUser> {
    let external_id = external_id(&entry, profile)?;
    let user_name = entry.first(&profile.user_name)?.to_owned();
    let emails = entry
        .values(&profile.email)
        .iter()
        .filter(|v| !v.is_empty())
        .enumerate()
        .map(|(i, value)| Email {
            value: value.clone(),
            kind: None,
            primary: i == 0,
        })
        .collect();
    let given_name = entry.first(&profile.given_name).map(str::to_owned);
    let family_name = entry.first(&profile.family_name).map(str::to_owned);
    let display_name = entry
        .first(&profile.display_name)
        .or_else(|| entry.first("cn"))
        .map(str::to_owned);
    let active = is_active(&entry, profile, matched_inactive);
    let attributes = attributes(entry, profile, &external_id);
    Some(SourceUser {
        external_id,
        user_name,
        given_name,
        family_name,
        display_name,
        emails,
        active,
        attributes,
    })
}

/// Maps a group entry with its resolved members.
pub(super) fn to_group(
    external_id: String,
    mut entry: Entry,
    profile: &Profile,
    members: Vec<MemberRef>,
) -> SourceGroup {
    // Member lists (and their `;range=` parts) can be long and are in `members` already.
    for name in profile.member.iter().chain(&profile.member_uid) {
        entry.text.retain(|key, _| {
            let base = key.split(';').next().unwrap_or(key);
            !base.eq_ignore_ascii_case(name)
        });
    }
    let display_name = entry
        .first(&profile.group_name)
        .map_or_else(|| entry.dn.clone(), str::to_owned);
    let description = entry.first(&profile.group_description).map(str::to_owned);
    let attributes = attributes(entry, profile, &external_id);
    SourceGroup {
        display_name,
        description,
        external_id,
        members,
        attributes,
    }
}

/// The entry's text attributes, moved (one value: a string; several: an array), its
/// `dn`, and the external id under the id attribute's name (an `objectGUID` as text).
/// Other binary attributes (photos, SIDs) are left out.
fn attributes(entry: Entry, profile: &Profile, external_id: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("dn".to_owned(), Value::String(entry.dn));
    for (name, mut values) in entry.text {
        if name.eq_ignore_ascii_case(&profile.id) {
            continue;
        }
        let value = match values.len() {
            1 => Value::String(values.pop().unwrap_or_default()),
            _ => Value::Array(values.into_iter().map(Value::String).collect()),
        };
        map.insert(name, value);
    }
    map.insert(profile.id.clone(), Value::String(external_id.to_owned()));
    map
}

/// A `uniqueMember` value may end in an optional unique identifier (`#'0101'B`,
/// RFC 4517 nameAndOptionalUID); the DN is what is before it.
pub(super) fn member_dn(value: &str) -> &str {
    match value.rfind("#'") {
        Some(at) if value.ends_with("'B") => &value[..at],
        _ => value,
    }
}
