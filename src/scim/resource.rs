//! SCIM resources and the common model: a pushed User or Group (RFC 7643) is checked and
//! normalised into a `SourceUser`/`SourceGroup` for the tenant's mirror, keeping the body
//! as pushed in `attributes` (so GET returns what the IdP sent); and a mirrored record is
//! rendered back as a SCIM resource with its `id` and `meta`.
//!
//! Tolerance for what real IdPs send: attribute names in any case, booleans as strings
//! (`"True"`, `"false"`), `primary` as a string, SCIM 1.1 core schema names.

use serde_json::{Map, Value, json};

use crate::model::{Email, MemberKind, SourceGroup, SourceUser};

pub use crate::scim::discovery::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, V1_CORE_SCHEMA as CORE_SCHEMA_V1,
};

/// A resource the server cannot accept, with the RFC 7644 `scimType` it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    InvalidValue(String),
}

impl ResourceError {
    pub fn scim_type(&self) -> &'static str {
        match self {
            ResourceError::InvalidSyntax(_) => "invalidSyntax",
            ResourceError::InvalidValue(_) => "invalidValue",
        }
    }
}

/// The server-managed part of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub resource_type: &'static str,
    pub created: String,
    pub last_modified: String,
    pub location: String,
    /// The content hash, rendered as a weak ETag.
    pub version: String,
}

/// Where a group keeps the `display` its client gave each member (by member id), in the
/// stored attributes. Not a valid SCIM attribute name (a `:` outside a schema URN), so it
/// cannot collide with one a client sends.
pub const MEMBER_DISPLAY_KEY: &str = "idsync:memberDisplay";

/// A member reference of a pushed group; `kind` is None when the IdP did not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedMember {
    pub id: String,
    pub kind: Option<MemberKind>,
}

pub use crate::filter::get_ci;

fn optional_string(
    object: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ResourceError> {
    match get_ci(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ResourceError::InvalidValue(format!(
            "`{key}` must be a string, got {other}"
        ))),
    }
}

/// A boolean, also when sent as a string in any case.
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn check_schemas(object: &Map<String, Value>, expected: &str) -> Result<(), ResourceError> {
    let schemas = match get_ci(object, "schemas") {
        Some(Value::Array(schemas)) => schemas,
        _ => {
            return Err(ResourceError::InvalidSyntax(format!(
                "`schemas` must be an array that includes \"{expected}\""
            )));
        }
    };
    let known = schemas
        .iter()
        .filter_map(Value::as_str)
        .any(|s| s.eq_ignore_ascii_case(expected) || s.eq_ignore_ascii_case(CORE_SCHEMA_V1));
    if known {
        Ok(())
    } else {
        Err(ResourceError::InvalidSyntax(format!(
            "`schemas` must include \"{expected}\""
        )))
    }
}

fn object(body: &Value) -> Result<&Map<String, Value>, ResourceError> {
    body.as_object()
        .ok_or_else(|| ResourceError::InvalidSyntax("the body must be a JSON object".into()))
}

/// The body as stored: everything the IdP sent except the server-managed `id` and `meta`.
/// An extension's object (`"urn:…:enterprise:2.0:User": {…}`) is stored without a
/// `schemas` member of its own: a client that PATCHes the extension with a value copied
/// from a whole resource sends one, but the resource's top-level `schemas` is the only
/// place RFC 7643 §3 gives it, and answers carrying it inside fail validation.
fn stored_attributes(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("id") && !k.eq_ignore_ascii_case("meta"))
        .map(|(k, v)| {
            let value = match v {
                Value::Object(inner) if k.to_ascii_lowercase().starts_with("urn:") => {
                    Value::Object(
                        inner
                            .iter()
                            .filter(|(name, _)| !name.eq_ignore_ascii_case("schemas"))
                            .map(|(name, value)| (name.clone(), value.clone()))
                            .collect(),
                    )
                }
                other => other.clone(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// Checks and normalises a pushed User; `id` is the server-assigned id.
pub fn user_from_scim(id: &str, body: &Value) -> Result<SourceUser, ResourceError> {
    let object = object(body)?;
    check_schemas(object, USER_SCHEMA)?;
    let user_name = optional_string(object, "userName")?
        .ok_or_else(|| ResourceError::InvalidValue("`userName` is required".into()))?;
    let (given_name, family_name) = match get_ci(object, "name") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(name)) => (
            optional_string(name, "givenName")?,
            optional_string(name, "familyName")?,
        ),
        Some(other) => {
            return Err(ResourceError::InvalidValue(format!(
                "`name` must be an object, got {other}"
            )));
        }
    };
    let mut emails = Vec::new();
    match get_ci(object, "emails") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(entry) = item.as_object() else {
                    return Err(ResourceError::InvalidValue(format!(
                        "`emails[{i}]` must be an object with a `value`"
                    )));
                };
                let Some(value) = optional_string(entry, "value")? else {
                    continue;
                };
                let primary = match get_ci(entry, "primary") {
                    None | Some(Value::Null) => false,
                    Some(flag) => boolean(flag).ok_or_else(|| {
                        ResourceError::InvalidValue(format!(
                            "`emails[{i}].primary` must be a boolean"
                        ))
                    })?,
                };
                emails.push(Email {
                    value,
                    kind: optional_string(entry, "type")?,
                    primary,
                });
            }
        }
        Some(_) => {
            return Err(ResourceError::InvalidValue(
                "`emails` must be an array".into(),
            ));
        }
    }
    let active = match get_ci(object, "active") {
        None | Some(Value::Null) => true,
        Some(flag) => boolean(flag).ok_or_else(|| {
            ResourceError::InvalidValue(format!("`active` must be a boolean, got {flag}"))
        })?,
    };
    Ok(SourceUser {
        external_id: id.to_string(),
        user_name,
        given_name,
        family_name,
        display_name: optional_string(object, "displayName")?,
        emails,
        active,
        attributes: stored_attributes(object),
    })
}

/// Checks and normalises a pushed Group; its members come back separately, since a
/// member's kind may have to be looked up.
pub fn group_from_scim(
    id: &str,
    body: &Value,
) -> Result<(SourceGroup, Vec<PushedMember>), ResourceError> {
    let object = object(body)?;
    check_schemas(object, GROUP_SCHEMA)?;
    let display_name = optional_string(object, "displayName")?
        .ok_or_else(|| ResourceError::InvalidValue("`displayName` is required".into()))?;
    let mut members = Vec::new();
    let mut displays = Map::new();
    match get_ci(object, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let entry = item.as_object().ok_or_else(|| {
                    ResourceError::InvalidValue(format!(
                        "`members[{i}]` must be an object with a `value`"
                    ))
                })?;
                let member_id = optional_string(entry, "value")?.ok_or_else(|| {
                    ResourceError::InvalidValue(format!("`members[{i}].value` is required"))
                })?;
                let kind = match optional_string(entry, "type")? {
                    None => None,
                    Some(t) if t.eq_ignore_ascii_case("user") => Some(MemberKind::User),
                    Some(t) if t.eq_ignore_ascii_case("group") => Some(MemberKind::Group),
                    Some(t) => {
                        return Err(ResourceError::InvalidValue(format!(
                            "`members[{i}].type` must be \"User\" or \"Group\", got {t:?}"
                        )));
                    }
                };
                if let Some(display) = optional_string(entry, "display")? {
                    displays.insert(member_id.clone(), Value::String(display));
                }
                members.push(PushedMember {
                    id: member_id,
                    kind,
                });
            }
        }
        Some(_) => {
            return Err(ResourceError::InvalidValue(
                "`members` must be an array".into(),
            ));
        }
    }
    let mut attributes = stored_attributes(object);
    // Members are kept in the group's member list, not twice; the `display` the client
    // gave each is kept apart, to be returned with the member (what a client sends under
    // the reserved key itself is dropped).
    attributes.retain(|k, _| !k.eq_ignore_ascii_case("members") && k != MEMBER_DISPLAY_KEY);
    if !displays.is_empty() {
        attributes.insert(MEMBER_DISPLAY_KEY.into(), Value::Object(displays));
    }
    Ok((
        SourceGroup {
            external_id: id.to_string(),
            display_name,
            description: None,
            members: Vec::new(),
            attributes,
        },
        members,
    ))
}

fn meta_json(meta: &Meta) -> Value {
    json!({
        "resourceType": meta.resource_type,
        "created": meta.created,
        "lastModified": meta.last_modified,
        "location": meta.location,
        "version": format!("W/\"{}\"", meta.version),
    })
}

/// A mirrored user as a SCIM resource: the body as pushed, with `id` and `meta`.
pub fn user_to_scim(user: &SourceUser, meta: &Meta) -> Value {
    let mut object = user.attributes.clone();
    if get_ci(&object, "schemas").is_none() {
        object.insert("schemas".into(), json!([USER_SCHEMA]));
    }
    object.insert("id".into(), json!(user.external_id));
    object.insert("meta".into(), meta_json(meta));
    Value::Object(object)
}

/// A mirrored group as a SCIM resource, with its members (`value`, `type`, `$ref`).
pub fn group_to_scim(group: &SourceGroup, meta: &Meta, base: &str) -> Value {
    let mut object = group.attributes.clone();
    let displays = match object.remove(MEMBER_DISPLAY_KEY) {
        Some(Value::Object(displays)) => displays,
        _ => Map::new(),
    };
    if get_ci(&object, "schemas").is_none() {
        object.insert("schemas".into(), json!([GROUP_SCHEMA]));
    }
    object.insert("id".into(), json!(group.external_id));
    object.insert("displayName".into(), json!(group.display_name));
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|m| {
            let (kind, endpoint) = match m.kind {
                MemberKind::User => ("User", "Users"),
                MemberKind::Group => ("Group", "Groups"),
            };
            let mut member =
                json!({"value": m.id, "type": kind, "$ref": format!("{base}/{endpoint}/{}", m.id)});
            if let Some(display) = displays.get(&m.id) {
                member["display"] = display.clone();
            }
            member
        })
        .collect();
    object.insert("members".into(), Value::Array(members));
    object.insert("meta".into(), meta_json(meta));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberRef;

    #[test]
    fn a_members_display_comes_back_as_sent() {
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": "Staff",
            "members": [{"value": "u1", "type": "User", "display": "Babs Jensen"}, {"value": "u2"}],
            MEMBER_DISPLAY_KEY: {"u2": "smuggled"}
        });
        let (mut group, pushed) = group_from_scim("g1", &body).expect("group");
        assert_eq!(pushed.len(), 2);
        group.members = vec![MemberRef::user("u1"), MemberRef::user("u2")];
        let meta = Meta {
            resource_type: "Group",
            created: "c".into(),
            last_modified: "m".into(),
            location: "l".into(),
            version: "v".into(),
        };
        let rendered = group_to_scim(&group, &meta, "https://x/scim/t/v2");
        assert_eq!(rendered["members"][0]["display"], "Babs Jensen");
        assert!(rendered["members"][1].get("display").is_none());
        assert!(rendered.get(MEMBER_DISPLAY_KEY).is_none());
    }

    #[test]
    fn an_extension_is_stored_without_a_schemas_member_of_its_own() {
        let body = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "bjensen@example.com",
            ENTERPRISE_USER_SCHEMA: {"schemas": [ENTERPRISE_USER_SCHEMA], "employeeNumber": "7"}
        });
        let user = user_from_scim("id1", &body).expect("user");
        assert_eq!(
            user.attributes[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "7"})
        );
        assert_eq!(
            user.attributes["schemas"],
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
        );
    }

    fn meta() -> Meta {
        Meta {
            resource_type: "User",
            created: "2026-11-23T10:00:00.000Z".into(),
            last_modified: "2026-11-23T11:00:00.000Z".into(),
            location: "https://idp.example.com/scim/acme/v2/Users/1".into(),
            version: "abc".into(),
        }
    }

    /// What Entra ID sends when it creates a user.
    fn entra_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "userName": "Test_User_ab6490ee@testuser.com",
            "active": "True",
            "displayName": "BobIsAmazing",
            "emails": [{"primary": "true", "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            ENTERPRISE_USER_SCHEMA: {"department": "Tour Operations", "manager": {"value": "123"}}
        })
    }

    #[test]
    fn an_entra_user_is_normalised_and_kept_as_sent() {
        let user = user_from_scim("1", &entra_user()).unwrap();
        assert_eq!(user.external_id, "1");
        assert_eq!(user.user_name, "Test_User_ab6490ee@testuser.com");
        assert!(user.active, "\"True\" is true");
        assert_eq!(user.given_name.as_deref(), Some("givenName"));
        assert_eq!(
            user.primary_email(),
            Some("Test_User_fd0ea19b@testuser.com")
        );
        assert!(user.emails[0].primary);
        assert_eq!(
            user.attributes[ENTERPRISE_USER_SCHEMA]["department"],
            "Tour Operations"
        );
        let rendered = user_to_scim(&user, &meta());
        assert_eq!(rendered["id"], "1");
        assert_eq!(
            rendered["externalId"],
            "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
        );
        assert_eq!(rendered["meta"]["version"], "W/\"abc\"");
        assert_eq!(rendered["meta"]["resourceType"], "User");
    }

    #[test]
    fn client_supplied_id_and_meta_are_not_stored() {
        let mut body = entra_user();
        body["id"] = json!("client-chosen");
        body["meta"] = json!({"created": "1999"});
        let user = user_from_scim("server-id", &body).unwrap();
        assert!(!user.attributes.contains_key("id"));
        assert!(!user.attributes.contains_key("meta"));
        assert_eq!(user_to_scim(&user, &meta())["id"], "server-id");
    }

    #[test]
    fn bad_users_are_refused_with_the_right_scim_type() {
        let cases = [
            (json!([]), "invalidSyntax", "the body must be a JSON object"),
            (
                json!({"userName": "a"}),
                "invalidSyntax",
                "`schemas` must be an array that includes \"urn:ietf:params:scim:schemas:core:2.0:User\"",
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "userName": "a"}),
                "invalidSyntax",
                "`schemas` must include \"urn:ietf:params:scim:schemas:core:2.0:User\"",
            ),
            (
                json!({"schemas": [USER_SCHEMA]}),
                "invalidValue",
                "`userName` is required",
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": 5}),
                "invalidValue",
                "`userName` must be a string, got 5",
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "active": "yes"}),
                "invalidValue",
                "`active` must be a boolean, got \"yes\"",
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": "a@b"}),
                "invalidValue",
                "`emails` must be an array",
            ),
        ];
        for (body, scim_type, message) in cases {
            let err = user_from_scim("1", &body).unwrap_err();
            assert_eq!(err.scim_type(), scim_type, "{body}");
            assert_eq!(err.to_string(), message, "{body}");
        }
    }

    #[test]
    fn a_v1_user_from_okta_is_accepted() {
        let body = json!({"schemas": [CORE_SCHEMA_V1], "userName": "ann@example.com",
            "name": {"givenName": "Ann", "familyName": "Lee"}, "active": false});
        let user = user_from_scim("1", &body).unwrap();
        assert!(!user.active);
        assert_eq!(user.family_name.as_deref(), Some("Lee"));
    }

    #[test]
    fn groups_keep_members_apart_and_render_them_back() {
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering",
            "members": [{"value": "u1", "display": "Ann"}, {"value": "g2", "type": "Group"}]});
        let (mut group, members) = group_from_scim("g1", &body).unwrap();
        assert_eq!(group.display_name, "Engineering");
        assert!(!group.attributes.contains_key("members"));
        assert_eq!(
            members,
            vec![
                PushedMember {
                    id: "u1".into(),
                    kind: None
                },
                PushedMember {
                    id: "g2".into(),
                    kind: Some(MemberKind::Group)
                },
            ]
        );
        group.members = vec![crate::model::MemberRef::user("u1")];
        let mut m = meta();
        m.resource_type = "Group";
        let rendered = group_to_scim(&group, &m, "https://x/scim/acme/v2");
        assert_eq!(
            rendered["members"][0]["$ref"],
            "https://x/scim/acme/v2/Users/u1"
        );
        assert_eq!(rendered["members"][0]["type"], "User");
        let err = group_from_scim("g", &json!({"schemas": [GROUP_SCHEMA]})).unwrap_err();
        assert_eq!(err.to_string(), "`displayName` is required");
        let err = group_from_scim(
            "g",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"value": "u", "type": "Device"}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`members[0].type` must be \"User\" or \"Group\", got \"Device\""
        );
    }
}
