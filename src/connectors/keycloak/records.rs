//! Keycloak's user and group representations into the common model.

use serde_json::Value;

use crate::connectors::kind::UserKeys;
use crate::connectors::records::{
    exact_text, flag_or, given_and_family, group_of_object, object_members, primary_only,
};
use crate::model::{MemberRef, SourceGroup, SourceUser};

/// Keycloak `UserRepresentation` keys.
const USER_KEYS: &[&str] = &[
    "id",
    "username",
    "firstName",
    "lastName",
    "email",
    "emailVerified",
    "enabled",
    "createdTimestamp",
    "totp",
    "federationLink",
    "attributes",
    "requiredActions",
    "notBefore",
    "access",
    "disableableCredentialTypes",
    "origin",
    "self",
    "federatedIdentities",
    "realmRoles",
    "clientRoles",
    "groups",
];

/// The keys of this kind's user records, for `idsync check`.
pub(super) fn user_keys(_: &super::KeycloakSettings) -> UserKeys<'static> {
    UserKeys::listed(
        USER_KEYS,
        " (realm user attributes are read as `attributes.<name>`)",
    )
}

/// A field's text as sent; None when absent or empty.
pub(super) fn str_field(value: &Value, key: &str) -> Option<String> {
    exact_text(value.get(key))
}

/// A service-account user: linked to a client, or named `service-account-...`.
pub(super) fn is_service_account(user: &Value) -> bool {
    user.get("serviceAccountClientLink")
        .is_some_and(|v| !v.is_null())
        || user
            .get("serviceAccountClientId")
            .is_some_and(|v| !v.is_null())
        || user
            .get("username")
            .and_then(Value::as_str)
            .is_some_and(|name| name.starts_with("service-account-"))
}

/// Maps a full user representation; `None` for service accounts and users without
/// an id or user name.
pub(super) fn to_user(value: Value) -> Option<SourceUser> {
    if is_service_account(&value) {
        return None;
    }
    let external_id = str_field(&value, "id")?;
    let user_name = str_field(&value, "username")?;
    let given_name = str_field(&value, "firstName");
    let family_name = str_field(&value, "lastName");
    Some(SourceUser {
        external_id,
        user_name,
        display_name: given_and_family(&given_name, &family_name),
        given_name,
        family_name,
        emails: primary_only(str_field(&value, "email"), None),
        active: flag_or(&value, "enabled", true),
        attributes: object_members(value),
    })
}

pub(super) fn to_group(id: String, value: Value, members: Vec<MemberRef>) -> SourceGroup {
    let display_name = str_field(&value, "name").unwrap_or_else(|| id.clone());
    let description = str_field(&value, "description");
    group_of_object(id, display_name, description, value, members)
}
