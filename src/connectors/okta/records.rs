//! Okta users and groups in the common model (the `User` and `Group` schemas of
//! <https://github.com/okta/okta-management-openapi-spec>; see docs/connectors-okta.md).
//!
//! * User: `id` → external id, `profile.login` → user name, `profile.firstName`,
//!   `profile.lastName`, `profile.displayName` (else "first last"), `profile.email`
//!   (primary) and `profile.secondEmail`. `status` → active: `ACTIVE`, `PASSWORD_EXPIRED`,
//!   `LOCKED_OUT` and `RECOVERY` are active accounts; `SUSPENDED`, `DEPROVISIONED`,
//!   `STAGED` and `PROVISIONED` (not yet activated) are not. The source attributes are the
//!   user object as Okta sends it (`profile.department`, `status`, `type.id`...), without
//!   `_links`, `_embedded` and `lastLogin` (which changes at every sign-in and would
//!   rewrite the mirror for nothing).
//! * Group: `id`, `profile.name`, `profile.description`; attributes: the group object
//!   without `_links` and `_embedded` (`type`, `objectClass`, AD profile keys...).

use serde_json::Value;

use super::settings::StatusPolicy;
use crate::connectors::kind::UserKeys;
use crate::connectors::records::{object_members, trimmed_text};
use crate::model::{Email, SourceGroup, SourceUser};

/// Okta user object keys (`_links`, `_embedded` and `lastLogin` are dropped).
const USER_KEYS: &[&str] = &[
    "id",
    "status",
    "created",
    "activated",
    "statusChanged",
    "lastUpdated",
    "passwordChanged",
    "transitioningToStatus",
    "type",
    "profile",
    "credentials",
    "realmId",
];

/// The keys of this kind's user records, for `idsync check`.
pub(super) fn user_keys(_: &super::OktaSettings) -> UserKeys<'static> {
    UserKeys::listed(
        USER_KEYS,
        " (custom profile attributes are read as `profile.<name>`)",
    )
}

/// Statuses of an account that exists and may sign in.
const ACTIVE_STATUSES: [&str; 4] = ["ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"];

/// What the settings make of `DEPROVISIONED` and `SUSPENDED` users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    pub deprovisioned: StatusPolicy,
    pub suspended: StatusPolicy,
}

impl Policies {
    /// Whether a user (or group member) in `status` is left out.
    pub fn skips(&self, status: Option<&str>) -> bool {
        match status {
            Some("DEPROVISIONED") => self.deprovisioned == StatusPolicy::Skip,
            Some("SUSPENDED") => self.suspended == StatusPolicy::Skip,
            _ => false,
        }
    }
}

/// What becomes of one user object.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Keep(SourceUser),
    /// Left out by policy; the id (a delta removes it).
    Skip(String),
    /// Not a usable user (no id or login); ignored.
    Invalid,
}

/// The text at `pointer`, trimmed; None when absent or blank.
fn text(value: &Value, pointer: &str) -> Option<String> {
    trimmed_text(value.pointer(pointer))
}

/// The status of a user (or member) object.
pub fn status(value: &Value) -> Option<&str> {
    value.get("status").and_then(Value::as_str)
}

/// Maps one user object.
pub fn to_user(value: Value, policies: &Policies) -> Disposition {
    let Some(external_id) = text(&value, "/id") else {
        return Disposition::Invalid;
    };
    if policies.skips(status(&value)) {
        return Disposition::Skip(external_id);
    }
    let Some(user_name) = text(&value, "/profile/login") else {
        return Disposition::Invalid;
    };
    let given_name = text(&value, "/profile/firstName");
    let family_name = text(&value, "/profile/lastName");
    let display_name = text(&value, "/profile/displayName").or_else(|| {
        let parts: Vec<&str> = [&given_name, &family_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let mut emails = Vec::new();
    if let Some(email) = text(&value, "/profile/email") {
        emails.push(Email {
            value: email,
            kind: None,
            primary: true,
        });
    }
    if let Some(second) = text(&value, "/profile/secondEmail")
        && emails
            .iter()
            .all(|e| !e.value.eq_ignore_ascii_case(&second))
    {
        emails.push(Email {
            value: second,
            kind: None,
            primary: false,
        });
    }
    let active = status(&value).is_some_and(|s| ACTIVE_STATUSES.contains(&s));
    let mut attributes = object_members(value);
    for noise in ["_links", "_embedded", "lastLogin"] {
        attributes.remove(noise);
    }
    Disposition::Keep(SourceUser {
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

/// Maps one group object (`None` without an id) with its member ids.
pub fn to_group(value: Value, members: Vec<crate::model::MemberRef>) -> Option<SourceGroup> {
    let external_id = text(&value, "/id")?;
    let display_name = text(&value, "/profile/name").unwrap_or_else(|| external_id.clone());
    let description = text(&value, "/profile/description");
    let mut attributes = object_members(value);
    for noise in ["_links", "_embedded"] {
        attributes.remove(noise);
    }
    Some(SourceGroup {
        external_id,
        display_name,
        description,
        members,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberRef;
    use serde_json::json;

    const INACTIVE: Policies = Policies {
        deprovisioned: StatusPolicy::Inactive,
        suspended: StatusPolicy::Inactive,
    };

    fn alice(status: &str) -> Value {
        json!({
            "id": "00u1a2b3c4d5e6f7g8h9", "status": status,
            "created": "2022-04-04T15:56:05.000Z", "lastLogin": "2024-05-04T19:50:52.000Z",
            "lastUpdated": "2024-05-05T18:15:44.000Z", "type": {"id": "oty1162QAr8hJjTaq0g4"},
            "profile": {"login": "alice.smith@example.com", "email": "alice.smith@example.com",
                "firstName": "Alice", "lastName": "Smith", "secondEmail": null,
                "department": "Engineering"},
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": "https://acme.okta.com/api/v1/users/00u1a2b3c4d5e6f7g8h9"}}
        })
    }

    #[test]
    fn a_user_in_the_common_model() {
        let Disposition::Keep(user) = to_user(alice("ACTIVE"), &INACTIVE) else {
            panic!("kept");
        };
        assert_eq!(user.external_id, "00u1a2b3c4d5e6f7g8h9");
        assert_eq!(user.user_name, "alice.smith@example.com");
        assert_eq!(user.given_name.as_deref(), Some("Alice"));
        assert_eq!(user.family_name.as_deref(), Some("Smith"));
        assert_eq!(user.display_name.as_deref(), Some("Alice Smith"));
        assert_eq!(user.primary_email(), Some("alice.smith@example.com"));
        assert_eq!(user.emails.len(), 1);
        assert!(user.active);
        assert_eq!(user.attributes["profile"]["department"], "Engineering");
        assert_eq!(user.attributes["status"], "ACTIVE");
        assert_eq!(user.attributes["type"]["id"], "oty1162QAr8hJjTaq0g4");
        assert!(!user.attributes.contains_key("_links"));
        assert!(!user.attributes.contains_key("lastLogin"));
    }

    #[test]
    fn display_name_and_second_email() {
        let mut value = alice("ACTIVE");
        value["profile"]["displayName"] = json!("Ali S.");
        value["profile"]["secondEmail"] = json!("ali@home.example");
        let Disposition::Keep(user) = to_user(value, &INACTIVE) else {
            panic!("kept");
        };
        assert_eq!(user.display_name.as_deref(), Some("Ali S."));
        assert_eq!(user.emails[1].value, "ali@home.example");
        assert!(!user.emails[1].primary);
    }

    #[test]
    fn statuses_and_policies() {
        for (status, active) in [
            ("ACTIVE", true),
            ("PASSWORD_EXPIRED", true),
            ("LOCKED_OUT", true),
            ("RECOVERY", true),
            ("SUSPENDED", false),
            ("DEPROVISIONED", false),
            ("STAGED", false),
            ("PROVISIONED", false),
        ] {
            let Disposition::Keep(user) = to_user(alice(status), &INACTIVE) else {
                panic!("{status} kept");
            };
            assert_eq!(user.active, active, "{status}");
        }
        let skip = Policies {
            deprovisioned: StatusPolicy::Skip,
            suspended: StatusPolicy::Skip,
        };
        for status in ["SUSPENDED", "DEPROVISIONED"] {
            assert_eq!(
                to_user(alice(status), &skip),
                Disposition::Skip("00u1a2b3c4d5e6f7g8h9".into())
            );
        }
        assert!(matches!(
            to_user(alice("ACTIVE"), &skip),
            Disposition::Keep(_)
        ));
        assert_eq!(
            to_user(
                json!({"id": "00u1", "status": "ACTIVE", "profile": {}}),
                &INACTIVE
            ),
            Disposition::Invalid
        );
        assert_eq!(
            to_user(json!({"status": "ACTIVE"}), &INACTIVE),
            Disposition::Invalid
        );
    }

    #[test]
    fn a_group_in_the_common_model() {
        let value = json!({"id": "00g1emaKYZTWRYYRRTSK", "type": "APP_GROUP",
            "lastMembershipUpdated": "2015-11-28T19:15:32.000Z",
            "objectClass": ["okta:windows_security_principal"],
            "profile": {"name": "Engineering Users", "description": "corp/Engineering",
                "samAccountName": "Engineering Users"},
            "_links": {"users": {"href": "x"}}});
        let group = to_group(value, vec![MemberRef::user("00u1")]).expect("group");
        assert_eq!(group.external_id, "00g1emaKYZTWRYYRRTSK");
        assert_eq!(group.display_name, "Engineering Users");
        assert_eq!(group.description.as_deref(), Some("corp/Engineering"));
        assert_eq!(group.members, vec![MemberRef::user("00u1")]);
        assert_eq!(group.attributes["type"], "APP_GROUP");
        assert!(!group.attributes.contains_key("_links"));
        assert!(to_group(json!({"profile": {}}), vec![]).is_none());
    }
}
