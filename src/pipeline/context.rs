//! The JSON a mapping's filters and expressions see for one record: the untouched source
//! attributes, overlaid with the normalised fields under their SCIM names (`userName`,
//! `name.givenName`, `emails`, `active`, `externalId`, ...) and, for users, `groups`: the
//! names of every source group the user is in, directly or through nesting.

use serde_json::{Map, Value, json};

use crate::model::{SourceGroup, SourceUser};

/// The context of a user. `groups` are source group display names.
pub fn user_context(user: &SourceUser, groups: &[&str]) -> Value {
    let mut object = user.attributes.clone();
    overlay(
        &mut object,
        [
            ("externalId", json!(user.external_id)),
            ("userName", json!(user.user_name)),
            ("active", json!(user.active)),
            ("groups", json!(groups)),
        ],
    );
    if let Some(display) = &user.display_name {
        object.insert("displayName".into(), json!(display));
    }
    let mut name = match object.remove("name") {
        Some(Value::Object(existing)) => existing,
        _ => Map::new(),
    };
    if let Some(given) = &user.given_name {
        name.insert("givenName".into(), json!(given));
    }
    if let Some(family) = &user.family_name {
        name.insert("familyName".into(), json!(family));
    }
    object.insert("name".into(), Value::Object(name));
    if !user.emails.is_empty() {
        object.insert("emails".into(), json!(user.emails));
    }
    Value::Object(object)
}

/// The context of a group (its members are not part of it).
pub fn group_context(group: &SourceGroup) -> Value {
    let mut object = group.attributes.clone();
    object.remove("members");
    overlay(
        &mut object,
        [
            ("externalId", json!(group.external_id)),
            ("displayName", json!(group.display_name)),
        ],
    );
    if let Some(description) = &group.description {
        object.insert("description".into(), json!(description));
    }
    Value::Object(object)
}

fn overlay<const N: usize>(object: &mut Map<String, Value>, fields: [(&str, Value); N]) {
    for (key, value) in fields {
        object.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Email;

    #[test]
    fn normalised_fields_overlay_the_source_attributes() {
        let mut attributes = Map::new();
        attributes.insert("department".into(), json!("Sales"));
        attributes.insert("userName".into(), json!("stale"));
        let user = SourceUser {
            external_id: "u1".into(),
            user_name: "ann@example.com".into(),
            given_name: Some("Ann".into()),
            family_name: None,
            display_name: None,
            emails: vec![Email {
                value: "ann@example.com".into(),
                kind: Some("work".into()),
                primary: true,
            }],
            active: true,
            attributes,
        };
        let context = user_context(&user, &["Sales", "Everyone"]);
        assert_eq!(context["userName"], "ann@example.com");
        assert_eq!(context["department"], "Sales");
        assert_eq!(context["name"]["givenName"], "Ann");
        assert_eq!(context["emails"][0]["type"], "work");
        assert_eq!(context["groups"], json!(["Sales", "Everyone"]));
    }
}
