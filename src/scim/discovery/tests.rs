//! Tests of the discovery documents and of the attribute tables behind them.

use serde_json::{Value, json};

use super::*;

const BASE: &str = "https://idp.example.com/scim/acme/v2";

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<_> = value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    keys.sort_unstable();
    keys
}

fn info(schema: &str, path: &str) -> AttributeInfo {
    attribute(schema, path).unwrap_or_else(|| panic!("{path} not found in {schema}"))
}

/// Every table row with its dotted path.
fn all_rows() -> Vec<(String, &'static Attr)> {
    let mut rows = Vec::new();
    for table in [USER, GROUP, ENTERPRISE, COMMON] {
        for top in table {
            rows.push((top.info.name.to_owned(), top));
            rows.extend(
                top.subs
                    .iter()
                    .map(|sub| (format!("{}.{}", top.info.name, sub.info.name), sub)),
            );
        }
    }
    rows
}

#[test]
fn service_provider_config_has_the_rfc_7643_shape() {
    let opts = ProviderOptions {
        max_results: 200,
        max_payload_size: 2_000_000,
        ..Default::default()
    };
    let doc = service_provider_config(&format!("{BASE}/"), &opts);
    assert_eq!(
        keys(&doc),
        [
            "authenticationSchemes",
            "bulk",
            "changePassword",
            "etag",
            "filter",
            "meta",
            "patch",
            "schemas",
            "sort"
        ]
    );
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(doc["patch"], json!({"supported": true}));
    assert_eq!(
        doc["bulk"],
        json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 2_000_000})
    );
    assert_eq!(doc["filter"], json!({"supported": true, "maxResults": 200}));
    assert_eq!(doc["changePassword"], json!({"supported": false}));
    assert_eq!(
        (&doc["sort"], &doc["etag"]),
        (&json!({"supported": true}), &json!({"supported": true}))
    );
    assert_eq!(
        doc["meta"],
        json!({
            "resourceType": "ServiceProviderConfig",
            "location": format!("{BASE}/ServiceProviderConfig")
        })
    );
    let schemes = doc["authenticationSchemes"].as_array().expect("array");
    assert_eq!(schemes.len(), 1);
    assert_eq!(
        keys(&schemes[0]),
        ["description", "name", "primary", "specUri", "type"]
    );
    assert_eq!(
        (&schemes[0]["type"], &schemes[0]["primary"]),
        (&json!("oauthbearertoken"), &json!(true))
    );
}

#[test]
fn basic_auth_and_documentation_are_advertised_when_configured() {
    let opts = ProviderOptions {
        basic_auth: true,
        documentation_uri: Some("https://docs.example.com/scim".into()),
        ..Default::default()
    };
    let doc = service_provider_config(BASE, &opts);
    assert_eq!(
        doc["documentationUri"],
        json!("https://docs.example.com/scim")
    );
    let schemes = &doc["authenticationSchemes"];
    assert_eq!(schemes[1]["type"], json!("httpbasic"));
    assert_eq!(schemes[1]["primary"], json!(false));
    assert_eq!(
        schemes[1]["specUri"],
        json!("https://www.rfc-editor.org/info/rfc7617")
    );
}

#[test]
fn service_provider_config_v1_has_the_scim_1_1_shape() {
    let opts = ProviderOptions {
        basic_auth: true,
        ..Default::default()
    };
    let doc = service_provider_config_v1(BASE, &opts);
    assert_eq!(doc["schemas"], json!(["urn:scim:schemas:core:1.0"]));
    assert_eq!(doc["xmlDataFormat"], json!({"supported": false}));
    assert_eq!(
        doc["filter"],
        json!({"supported": true, "maxResults": 1000})
    );
    assert_eq!(
        doc["bulk"],
        json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 1_048_576})
    );
    assert_eq!(
        doc["meta"]["location"],
        json!(format!("{BASE}/ServiceProviderConfigs"))
    );
    assert_eq!(
        doc["authenticationSchemes"][1]["specUrl"],
        json!("https://www.rfc-editor.org/info/rfc7617")
    );
    assert!(doc["authenticationSchemes"][0].get("specUri").is_none());
}

#[test]
fn resource_types_are_a_list_response() {
    let doc = resource_types(BASE);
    assert_eq!(
        keys(&doc),
        [
            "Resources",
            "itemsPerPage",
            "schemas",
            "startIndex",
            "totalResults"
        ]
    );
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (&doc["totalResults"], &doc["startIndex"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        doc["Resources"][0],
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER_SCHEMA, "required": false}
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{BASE}/ResourceTypes/User")
            }
        })
    );
    assert_eq!(doc["Resources"][1]["endpoint"], json!("/Groups"));
    assert!(doc["Resources"][1].get("schemaExtensions").is_none());
}

#[test]
fn resource_type_is_found_by_name_case_insensitively() {
    assert_eq!(
        resource_type(BASE, "user"),
        Some(resource_types(BASE)["Resources"][0].clone())
    );
    assert_eq!(
        resource_type(BASE, "GROUP").map(|g| g["id"].clone()),
        Some(json!("Group"))
    );
    assert_eq!(resource_type(BASE, "Device"), None);
}

#[test]
fn schemas_list_the_three_schemas_with_full_definitions() {
    let doc = schemas(BASE);
    assert_eq!(doc["totalResults"], json!(3));
    let ids: Vec<_> = doc["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            json!(USER_SCHEMA),
            json!(GROUP_SCHEMA),
            json!(ENTERPRISE_USER_SCHEMA)
        ]
    );

    let user = schema(BASE, &USER_SCHEMA.to_uppercase()).expect("user schema");
    assert_eq!(
        keys(&user),
        ["attributes", "description", "id", "meta", "name", "schemas"]
    );
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
    );
    assert_eq!(
        user["meta"]["location"],
        json!(format!("{BASE}/Schemas/{USER_SCHEMA}"))
    );
    assert_eq!(user["attributes"].as_array().map(Vec::len), Some(21));
    assert_eq!(
        user["attributes"][0],
        json!({
            "name": "userName", "type": "string", "multiValued": false,
            "description": "Unique identifier of the User, used to sign in.",
            "required": true, "caseExact": false, "mutability": "readWrite",
            "returned": "default", "uniqueness": "server"
        })
    );
    let emails = user["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == "emails");
    let emails = emails.expect("emails");
    assert_eq!(
        keys(emails),
        [
            "description",
            "multiValued",
            "mutability",
            "name",
            "required",
            "returned",
            "subAttributes",
            "type"
        ]
    );
    assert_eq!(
        emails["subAttributes"][2]["canonicalValues"],
        json!(["work", "home", "other"])
    );
    let members = &schema(BASE, GROUP_SCHEMA).expect("group")["attributes"][1];
    assert_eq!(
        members["subAttributes"][1]["referenceTypes"],
        json!(["User", "Group"])
    );
    assert_eq!(schema(BASE, "urn:example:unknown"), None);
}

#[test]
fn attribute_lookups_follow_rfc_7643() {
    let user_name = info(USER_SCHEMA, "userName");
    assert_eq!(
        (
            user_name.uniqueness,
            user_name.case_exact,
            user_name.required
        ),
        (Uniqueness::Server, false, true)
    );

    let id = info(USER_SCHEMA, "ID");
    assert_eq!(
        (id.mutability, id.returned, id.case_exact),
        (Mutability::ReadOnly, Returned::Always, true)
    );
    assert_eq!(info(GROUP_SCHEMA, "id").mutability, Mutability::ReadOnly);
    assert!(info(USER_SCHEMA, "externalId").case_exact);
    assert_eq!(
        info(USER_SCHEMA, "meta.lastModified").kind,
        AttributeKind::DateTime
    );

    let password = info(USER_SCHEMA, "password");
    assert_eq!(
        (password.mutability, password.returned),
        (Mutability::WriteOnly, Returned::Never)
    );

    let email = info(USER_SCHEMA, "Emails.Value");
    assert_eq!(
        (email.name, email.kind, email.multi_valued),
        ("value", AttributeKind::String, false)
    );
    assert!(info(USER_SCHEMA, "emails").multi_valued);
    assert_eq!(
        info(USER_SCHEMA, "emails.primary").kind,
        AttributeKind::Boolean
    );

    assert_eq!(
        info(GROUP_SCHEMA, "members.value").mutability,
        Mutability::Immutable
    );
    assert_eq!(info(USER_SCHEMA, "groups").mutability, Mutability::ReadOnly);
    assert_eq!(
        info(USER_SCHEMA, "groups.display").mutability,
        Mutability::ReadOnly
    );
    assert_eq!(
        info(USER_SCHEMA, "photos.value").kind,
        AttributeKind::Reference
    );
    assert_eq!(
        info(USER_SCHEMA, "x509Certificates.value").kind,
        AttributeKind::Binary
    );
}

#[test]
fn enterprise_attributes_resolve_by_schema_or_qualified_path() {
    let manager = info(ENTERPRISE_USER_SCHEMA, "manager.value");
    assert_eq!(
        (manager.case_exact, manager.mutability),
        (true, Mutability::ReadWrite)
    );
    let qualified = info(
        USER_SCHEMA,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
    );
    assert_eq!(qualified.mutability, Mutability::ReadOnly);
    assert_eq!(
        info(
            GROUP_SCHEMA,
            "urn:ietf:params:scim:schemas:core:2.0:User:userName"
        )
        .name,
        "userName"
    );
    assert!(!info(ENTERPRISE_USER_SCHEMA, "manager").multi_valued);
    // The extension has no common attributes of its own.
    assert_eq!(attribute(ENTERPRISE_USER_SCHEMA, "id"), None);
}

#[test]
fn unknown_paths_are_none() {
    for (schema, path) in [
        (USER_SCHEMA, "nosuch"),
        (USER_SCHEMA, "emails.nosuch"),
        (USER_SCHEMA, "name.givenName.extra"),
        (USER_SCHEMA, "employeeNumber"),
        (USER_SCHEMA, ""),
        (GROUP_SCHEMA, "userName"),
        ("urn:example:unknown", "id"),
        (USER_SCHEMA, ENTERPRISE_USER_SCHEMA),
        (
            USER_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:",
        ),
        (
            USER_SCHEMA,
            "urn:ietf:params:scim:schemas:core:2.0:Üser:userName",
        ),
    ] {
        assert_eq!(attribute(schema, path), None, "{schema} {path}");
    }
}

#[test]
fn every_attribute_has_a_description_and_consistent_characteristics() {
    for (path, row) in all_rows() {
        assert!(row.desc.len() > 10, "{path} has no description");
        assert!(
            row.desc.ends_with('.'),
            "{path}: description is not a sentence"
        );
        assert_eq!(
            row.info.kind == AttributeKind::Complex,
            !row.subs.is_empty(),
            "{path}"
        );
        assert_eq!(
            row.info.kind == AttributeKind::Reference,
            !row.refs.is_empty(),
            "{path}"
        );
    }
}

#[test]
fn attribute_answers_agree_with_the_published_schemas() {
    for def in &SCHEMAS {
        let doc = schema(BASE, def.urn).expect("schema");
        for top in doc["attributes"].as_array().into_iter().flatten() {
            let subs = top["subAttributes"].as_array().into_iter().flatten();
            let paths = std::iter::once((top["name"].as_str().unwrap_or_default().to_owned(), top))
                .chain(subs.map(|s| {
                    (
                        format!(
                            "{}.{}",
                            top["name"].as_str().unwrap_or_default(),
                            s["name"].as_str().unwrap_or_default()
                        ),
                        s,
                    )
                }));
            for (path, json) in paths {
                let found = info(def.urn, &path);
                assert_eq!(json["type"], json!(found.kind.as_str()), "{path}");
                assert_eq!(json["multiValued"], json!(found.multi_valued), "{path}");
                assert_eq!(
                    json["mutability"],
                    json!(found.mutability.as_str()),
                    "{path}"
                );
                assert_eq!(json["returned"], json!(found.returned.as_str()), "{path}");
                if let Some(case_exact) = json.get("caseExact") {
                    assert_eq!(case_exact, &json!(found.case_exact), "{path}");
                }
            }
        }
    }
}

#[test]
fn list_response_counts_its_resources() {
    let doc = list_response(vec![json!({"id": "a"}), json!({"id": "b"})]);
    assert_eq!(
        (&doc["totalResults"], &doc["itemsPerPage"]),
        (&json!(2), &json!(2))
    );
}
