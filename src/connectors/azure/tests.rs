//! Unit tests of the Graph connector's pure parts: JSON conversion, delta-token errors,
//! checkpoints and the read plan, the client assertion. The HTTP behaviour is tested
//! against the fake Graph in tests/connector_azure.rs.

use serde_json::{Map, json};

use super::records::{has_properties, member_ref, to_user};
use super::*;
use crate::connectors::http::HttpError;
use crate::spec::SecretString;

fn keys() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/keys")
}

fn cert_der() -> Vec<u8> {
    let pem = std::fs::read_to_string(keys().join("graph-test-cert.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn connector(configure: impl FnOnce(&mut AzureSettings)) -> AzureConnector {
    let mut settings = AzureSettings::new(
        "contoso.onmicrosoft.com",
        "app",
        AzureCredential::Secret(SecretString::new("s")),
    );
    configure(&mut settings);
    AzureConnector::new(&settings).expect("connector")
}

#[test]
fn users_from_graph_json() {
    let user = to_user(json!({
        "id": "6e7b768e-07e2-4810-8459-485f84f8f204",
        "userPrincipalName": "alice@contoso.com",
        "displayName": "Alice Smith",
        "givenName": "Alice",
        "surname": "Smith",
        "mail": "alice@contoso.com",
        "accountEnabled": false,
        "userType": "Member",
        "jobTitle": null,
        "@odata.type": "#microsoft.graph.user"
    }))
    .expect("user");
    assert_eq!(user.external_id, "6e7b768e-07e2-4810-8459-485f84f8f204");
    assert_eq!(user.user_name, "alice@contoso.com");
    assert_eq!(user.given_name.as_deref(), Some("Alice"));
    assert_eq!(user.family_name.as_deref(), Some("Smith"));
    assert_eq!(user.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(user.primary_email(), Some("alice@contoso.com"));
    assert!(!user.active);
    assert!(!user.attributes.contains_key("jobTitle"), "nulls dropped");
    assert!(
        !user.attributes.contains_key("@odata.type"),
        "annotations dropped"
    );
    assert_eq!(user.attributes["userType"], "Member");

    // A guest without mail or names; a user without accountEnabled is active.
    let guest = to_user(json!({"id": "g1", "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com", "userType": "Guest", "givenName": null})).unwrap();
    assert_eq!(
        guest.user_name,
        "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    );
    assert!(guest.active && guest.emails.is_empty() && guest.given_name.is_none());
    assert!(records::is_guest(&json!({"userType": "guest"})));
    assert!(!records::is_guest(&json!({"userType": null})));
    // Without a UPN: mail, then the id.
    assert_eq!(
        to_user(json!({"id": "x", "mail": "m@x"}))
            .unwrap()
            .user_name,
        "m@x"
    );
    assert_eq!(to_user(json!({"id": "x"})).unwrap().user_name, "x");
    assert!(to_user(json!({"displayName": "no id"})).is_none());
}

#[test]
fn members_by_odata_type() {
    assert_eq!(
        member_ref(&json!({"@odata.type": "#microsoft.graph.user", "id": "u"})),
        Some(MemberRef::user("u"))
    );
    assert_eq!(
        member_ref(
            &json!({"@odata.type": "#microsoft.graph.group", "id": "g", "@removed": {"reason": "deleted"}})
        ),
        Some(MemberRef::group("g"))
    );
    for other in [
        "#microsoft.graph.device",
        "#microsoft.graph.servicePrincipal",
        "#microsoft.graph.orgContact",
    ] {
        assert_eq!(member_ref(&json!({"@odata.type": other, "id": "x"})), None);
    }
    assert_eq!(member_ref(&json!({"id": "untyped"})), None);
    assert!(is_removed(
        &json!({"id": "x", "@removed": {"reason": "changed"}})
    ));
    assert!(!is_removed(&json!({"id": "x"})));
}

#[test]
fn delta_group_objects() {
    assert!(!has_properties(&json!({"id": "g", "members@delta": []})));
    assert!(has_properties(&json!({"id": "g", "displayName": "x"})));
    assert!(
        has_properties(&json!({"id": "g", "description": null})),
        "set to null is a change"
    );
    let mut item = json!({"id": "g", "displayName": "Eng", "description": "All", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u"}]});
    assert_eq!(take_members_delta(&mut item).len(), 1);
    let group = to_group("g".into(), attributes(item), vec![MemberRef::user("u")]);
    assert_eq!(group.display_name, "Eng");
    assert_eq!(group.description.as_deref(), Some("All"));
    assert!(!group.attributes.contains_key("members@delta"));
    let unnamed = to_group("g2".into(), Map::new(), vec![]);
    assert_eq!(unnamed.display_name, "g2");
}

fn status_error(status: u16, body: &str) -> ConnectorError {
    ConnectorError::Http {
        kind: "azure",
        what: "x".into(),
        source: HttpError::Status {
            status,
            url_path: "https://graph.microsoft.com/v1.0/users/delta".into(),
            body_excerpt: body.into(),
        },
    }
}

#[test]
fn expired_delta_tokens_are_recognised() {
    let sync_state = r#"{"error":{"code":"syncStateNotFound","message":"The sync state generation is not found."}}"#;
    assert!(is_expired_token(&status_error(410, "")));
    assert!(is_expired_token(&status_error(400, sync_state)));
    assert!(is_expired_token(&status_error(
        400,
        &sync_state.replace("syncState", "SyncState")
    )));
    assert!(is_expired_token(&status_error(
        404,
        r#"{"error":{"code":"resyncRequired"}}"#
    )));
    assert!(!is_expired_token(&status_error(
        400,
        r#"{"error":{"code":"Request_BadRequest"}}"#
    )));
    assert!(!is_expired_token(&status_error(403, sync_state)));
    assert!(!is_expired_token(&status_error(500, "")));
}

#[test]
fn path_segments_are_encoded() {
    assert_eq!(
        segment("02bd9fd6-8f93-4758-87c3-1fb73740a315"),
        "02bd9fd6-8f93-4758-87c3-1fb73740a315"
    );
    assert_eq!(segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
}

#[test]
fn the_read_plan() {
    let c = connector(|_| {});
    let now: DateTime<Utc> = "2024-05-10T12:00:00Z".parse().unwrap();
    let cp = AzureCheckpoint {
        v: 1,
        users: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=a".into(),
        groups: "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=b".into(),
        full_at: "2024-05-05T12:00:00Z".parse().unwrap(),
        query: c.fingerprint.clone(),
    };
    assert_eq!(AzureCheckpoint::parse(&cp.to_json()), Some(cp.clone()));
    assert_eq!(
        c.plan(Some(&cp.to_json()), now),
        ReadPlan::Delta(cp.clone())
    );
    let full = |plan: ReadPlan| match plan {
        ReadPlan::Full(why) => why,
        other => panic!("expected a full read: {other:?}"),
    };
    assert_eq!(full(c.plan(None, now)), "no checkpoint yet");
    assert!(full(c.plan(Some("cursor-1"), now)).contains("not a Graph delta checkpoint"));
    assert!(full(c.plan(Some(r#"{"v":2}"#), now)).contains("not a Graph delta checkpoint"));
    // Seven days after the last full read.
    let later: DateTime<Utc> = "2024-05-12T12:00:00Z".parse().unwrap();
    assert!(full(c.plan(Some(&cp.to_json()), later)).contains("older than full_sync_every"));
    // Links to another host are not followed.
    let mut moved = cp.clone();
    moved.groups = "https://evil.example/v1.0/groups/delta?$deltatoken=b".into();
    assert!(full(c.plan(Some(&moved.to_json()), now)).contains("another host"));
    // A different $select (or guests setting) needs a new initial round.
    let more = connector(|s| s.user_properties.push("costCenter".into()));
    assert!(full(more.plan(Some(&cp.to_json()), now)).contains("changed"));
    let no_guests = connector(|s| s.include_guests = false);
    assert!(full(no_guests.plan(Some(&cp.to_json()), now)).contains("changed"));
    let listing = connector(|s| s.delta = false);
    assert_eq!(
        full(listing.plan(Some(&cp.to_json()), now)),
        "delta = false"
    );
}

#[test]
fn paging_links_must_stay_on_the_graph_host() {
    let c = connector(|_| {});
    assert!(
        c.check_link("https://graph.microsoft.com/v1.0/users?$skiptoken=x")
            .is_ok()
    );
    for bad in [
        "https://graph.microsoft.com.evil.example/v1.0/users",
        "http://graph.microsoft.com/v1.0/users",
        "https://graph.microsoft.com:8443/v1.0/users",
        "not a url",
    ] {
        assert!(c.check_link(bad).is_err(), "{bad}");
    }
}

#[test]
fn certificate_thumbprints() {
    // Computed with `openssl x509 -outform DER | openssl dgst -sha256|-sha1 -binary`,
    // base64url without padding.
    let der = cert_der();
    assert_eq!(
        thumbprint_sha256(&der),
        "CnOcMRSKzGWlJnrYeTlXkz8UvWfBwellRL94sk1AX0M"
    );
    assert_eq!(thumbprint_sha1(&der), "DlX4_ad6yYsvoOuSWDJdPaKXKGE");
}

#[test]
fn the_client_assertion() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let key = std::fs::read_to_string(keys().join("graph-test-key.pem")).unwrap();
    let token_url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    let signer =
        AssertionSigner::new("app-id", token_url, &cert_der(), &SecretString::new(key)).unwrap();
    let now = crate::clock::now().timestamp();
    let jwt = signer.sign_at(now).unwrap();
    let header = decode_header(jwt.expose()).unwrap();
    assert_eq!(header.alg, Algorithm::PS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.x5t_s256.as_deref(),
        Some("CnOcMRSKzGWlJnrYeTlXkz8UvWfBwellRL94sk1AX0M")
    );
    assert_eq!(header.x5t.as_deref(), Some("DlX4_ad6yYsvoOuSWDJdPaKXKGE"));
    let cert = std::fs::read_to_string(keys().join("graph-test-cert.pem")).unwrap();
    let mut validation = Validation::new(Algorithm::PS256);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&["app-id"]);
    validation.sub = Some("app-id".into());
    validation.validate_nbf = true;
    let claims = decode::<serde_json::Value>(
        jwt.expose(),
        &DecodingKey::from_rsa_pem(cert.as_bytes()).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["nbf"], now);
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 300);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36);
    let again = signer.sign_at(now).unwrap();
    assert_ne!(again.expose(), jwt.expose(), "a fresh jti each time");

    let bad = AssertionSigner::new("app-id", token_url, &cert_der(), &SecretString::new("nope"));
    assert!(bad.is_err());
}

#[test]
fn a_disabled_connector_without_credentials_does_not_start() {
    let settings = AzureSettings::new(
        "t",
        "c",
        AzureCredential::Unavailable {
            key: "azure.certificate".into(),
            reason: "cannot read /x: not found".into(),
        },
    );
    let err = AzureConnector::new(&settings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read azure.certificate: cannot read /x: not found"
    );
}
