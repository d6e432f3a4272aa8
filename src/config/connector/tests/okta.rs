//! Parsing and checking `[okta]` tables: every mistake named with file, line and key.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::super::{ConnectorSettings, Context, load};
use std::time::Duration;

use crate::connectors::okta::*;
use crate::spec::parse_duration;
use crate::spec::problems::{Problems, Source};

const HEAD: &str = "kind = \"okta\"\nmapping = \"default\"\n[okta]\n";

fn key_file(name: &str) -> String {
    format!("{}/tests/support/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Loads `connectors/okta.toml` holding `HEAD` + `body`; a temp dir holds `files`.
fn check(body: &str, files: &[(&str, &str)]) -> (Option<OktaSettings>, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let file = dir.path().join("connectors/okta.toml");
    let text = format!("{HEAD}{body}");
    let mut problems = Problems::new(dir.path());
    let known: BTreeSet<String> = ["default".to_owned()].into();
    let context = Context {
        base_dir: dir.path(),
        known_mappings: &known,
        mappings_dir: PathBuf::from("mappings"),
    };
    let source = Source {
        file: &file,
        text: &text,
    };
    let connector = load("okta", &source, &context, &mut problems);
    let problems: Vec<String> = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    let settings = connector.map(|c| match c.settings {
        ConnectorSettings::Okta(settings) => settings,
        other => panic!("an okta connector, got {}", other.kind()),
    });
    (settings, problems)
}

fn valid(body: &str) -> OktaSettings {
    let (settings, problems) = check(body, &[]);
    assert!(problems.is_empty(), "{problems:?}");
    settings.expect("valid")
}

#[test]
fn a_service_app_with_defaults() {
    let settings = valid(&format!(
        "domain = \"Acme.okta.com\"\nclient_id = \"0oa1\"\nprivate_key = {{ file = \"{}\" }}\n",
        key_file("okta_test_key.pem")
    ));
    assert_eq!(settings.base_url, "https://acme.okta.com");
    let OktaAuth::ServiceApp(app) = &settings.auth else {
        panic!("a service app");
    };
    assert_eq!(app.client_id, "0oa1");
    assert_eq!(app.algorithm, KeyAlgorithm::Rs256);
    assert_eq!(app.key_id, None);
    assert_eq!(app.scopes, ["okta.users.read", "okta.groups.read"]);
    assert_eq!(app.token_url, "https://acme.okta.com/oauth2/v1/token");
    assert_eq!(settings.group_types, ["OKTA_GROUP", "APP_GROUP"]);
    assert_eq!(settings.deprovisioned, StatusPolicy::Inactive);
    assert_eq!(settings.suspended, StatusPolicy::Inactive);
    assert_eq!(settings.page_size, 200);
    assert_eq!(settings.requests_per_second.map(|r| r.get()), None);
    assert_eq!(settings.full_sync_every, Duration::from_secs(86_400));
}

#[test]
fn a_service_app_with_every_option() {
    let settings = valid(&format!(
        "base_url = \"https://login.acme.com/\"\ntoken_url = \"https://login.acme.com/oauth2/v1/token\"\n\
         client_id = \"0oa1\"\nprivate_key = {{ file = \"{}\" }}\nkey_id = \"k1\"\n\
         scopes = \"okta.users.read  okta.groups.read okta.logs.read\"\n\
         group_types = [\"okta_group\", \"BUILT_IN\"]\ndeprovisioned = \"skip\"\nsuspended = \"skip\"\n\
         page_size = 50\nrequests_per_second = 9\nfull_sync_every = \"1h30m\"\n",
        key_file("okta_test_ec_key.pem")
    ));
    assert_eq!(settings.base_url, "https://login.acme.com");
    let OktaAuth::ServiceApp(app) = &settings.auth else {
        panic!("a service app");
    };
    assert_eq!(app.algorithm, KeyAlgorithm::Es256);
    assert_eq!(app.key_id.as_deref(), Some("k1"));
    assert_eq!(
        app.scopes,
        ["okta.users.read", "okta.groups.read", "okta.logs.read"]
    );
    assert_eq!(settings.group_types, ["OKTA_GROUP", "BUILT_IN"]);
    assert_eq!(settings.deprovisioned, StatusPolicy::Skip);
    assert_eq!(settings.suspended, StatusPolicy::Skip);
    assert_eq!(settings.page_size, 50);
    assert_eq!(settings.requests_per_second.map(|r| r.get()), Some(9));
    assert_eq!(settings.full_sync_every, Duration::from_secs(5400));
}

#[test]
fn an_api_token() {
    // PATH is set wherever the tests run; a real config names its own variable.
    let settings = valid("domain = \"acme.oktapreview.com\"\napi_token = { env = \"PATH\" }\n");
    assert_eq!(settings.base_url, "https://acme.oktapreview.com");
    assert!(matches!(settings.auth, OktaAuth::ApiToken(ref t) if !t.expose().is_empty()));
}

#[test]
fn credentials_problems() {
    let key = key_file("okta_test_key.pem");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "domain = \"acme.okta.com\"\n".to_owned(),
            vec![
                "connectors/okta.toml:3: okta.client_id: [okta] needs credentials: client_id with \
                 private_key (an OAuth service app), or api_token = { env = \"NAME\" } (SSWS)",
            ],
        ),
        (
            "domain = \"acme.okta.com\"\nclient_id = \"0oa1\"\n".to_owned(),
            vec![
                "connectors/okta.toml:5: okta.private_key: client_id needs private_key = \
                 { file = \"path\" } (the service app's key, PEM)",
            ],
        ),
        (
            format!("domain = \"acme.okta.com\"\nprivate_key = {{ file = \"{key}\" }}\n"),
            vec![
                "connectors/okta.toml:5: okta.client_id: private_key needs client_id (the service app's client id)",
            ],
        ),
        (
            format!(
                "domain = \"acme.okta.com\"\napi_token = {{ env = \"PATH\" }}\nclient_id = \"0oa1\"\n\
                 private_key = {{ file = \"{key}\" }}\nkey_id = \"k\"\nscopes = [\"okta.users.read\"]\n"
            ),
            vec![
                "connectors/okta.toml:6: okta.client_id: use either api_token (SSWS) or client_id \
                 with private_key (OAuth service app), not both",
                "connectors/okta.toml:7: okta.private_key: applies only to an OAuth service app \
                 (client_id with private_key), not to api_token",
                "connectors/okta.toml:8: okta.key_id: applies only to an OAuth service app \
                 (client_id with private_key), not to api_token",
                "connectors/okta.toml:9: okta.scopes: applies only to an OAuth service app \
                 (client_id with private_key), not to api_token",
            ],
        ),
        (
            "domain = \"acme.okta.com\"\napi_token = { env = \"IDSYNC_TEST_UNSET_OKTA_TOKEN_7F3A\" }\n"
                .to_owned(),
            vec![
                "connectors/okta.toml:5: okta.api_token: environment variable \
                 `IDSYNC_TEST_UNSET_OKTA_TOKEN_7F3A` is not set",
            ],
        ),
        (
            "domain = \"acme.okta.com\"\napi_token = \"00abc\"\n".to_owned(),
            vec![
                "connectors/okta.toml:5: okta.api_token: secrets are given by reference, never \
                 inline: use { env = \"NAME\" } or { file = \"path\" }",
            ],
        ),
        (
            format!(
                "domain = \"acme.okta.com\"\nclient_id = \" \"\nprivate_key = {{ file = \"{key}\" }}\n\
                 key_id = \"\"\nscopes = []\n"
            ),
            vec![
                "connectors/okta.toml:5: okta.client_id: must not be empty",
                "connectors/okta.toml:7: okta.key_id: must not be empty (or leave it out)",
                "connectors/okta.toml:8: okta.scopes: must list one or more scopes, such as \
                 [\"okta.users.read\", \"okta.groups.read\"]",
            ],
        ),
        (
            "domain = \"acme.okta.com\"\nclient_id = \"0oa1\"\nprivate_key = { file = \"not-a-key.pem\" }\n"
                .to_owned(),
            vec![
                "connectors/okta.toml:6: okta.private_key: file `not-a-key.pem` does not hold an \
                 RSA or EC P-256 private key in PEM form (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN RSA PRIVATE KEY-----)",
            ],
        ),
        (
            format!(
                "domain = \"acme.okta.com\"\nclient_id = \"0oa1\"\nprivate_key = {{ file = \"{}\" }}\n",
                key_file("okta_test_key.pub.pem")
            ),
            vec![&*Box::leak(
                format!(
                    "connectors/okta.toml:6: okta.private_key: file `{}` does not hold an RSA or \
                     EC P-256 private key in PEM form (-----BEGIN PRIVATE KEY----- or \
                     -----BEGIN RSA PRIVATE KEY-----)",
                    key_file("okta_test_key.pub.pem")
                )
                .into_boxed_str(),
            )],
        ),
    ];
    for (body, expected) in cases {
        let (settings, problems) = check(&body, &[("not-a-key.pem", "hello\n")]);
        assert!(settings.is_none(), "{body}");
        assert_eq!(problems, expected, "{body}");
    }
}

#[test]
fn where_problems() {
    let token = "api_token = { env = \"PATH\" }\n";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "",
            vec![
                "connectors/okta.toml:3: okta.domain: [okta] needs `domain` (such as \
                 \"acme.okta.com\") or `base_url`",
            ],
        ),
        (
            "domain = \"https://acme.okta.com\"\n",
            vec![
                "connectors/okta.toml:5: okta.domain: `https://acme.okta.com` is not a domain: \
                 write the host alone, such as \"acme.okta.com\" (use base_url for a full URL)",
            ],
        ),
        (
            "domain = \"acme-admin.okta.com\"\n",
            vec![
                "connectors/okta.toml:5: okta.domain: `acme-admin.okta.com` is the Admin \
                 Console's host; use the org's Okta domain \"acme.okta.com\"",
            ],
        ),
        (
            "domain = \"acme.okta.com\"\nbase_url = \"https://acme.okta.com\"\n",
            vec![
                "connectors/okta.toml:6: okta.base_url: set either `domain` or `base_url`, not both",
            ],
        ),
        (
            "base_url = \"https://acme.okta.com/api/v1\"\n",
            vec![
                "connectors/okta.toml:5: okta.base_url: give the org's base URL without `/api/v1`",
            ],
        ),
        (
            "base_url = \"http://acme.okta.com\"\nallow_insecure_http = true\n",
            vec![
                "connectors/okta.toml:5: okta.base_url: `http://acme.okta.com`: plain http sends \
                 credentials unencrypted: use https (http is allowed only for loopback hosts, \
                 with allow_insecure_http = true)",
            ],
        ),
        (
            "base_url = \"http://127.0.0.1:8080\"\n",
            vec![
                "connectors/okta.toml:5: okta.base_url: `http://127.0.0.1:8080`: plain http sends \
                 credentials unencrypted: use https, or set allow_insecure_http = true (loopback \
                 hosts only, for labs and tests)",
            ],
        ),
        (
            "base_url = \"ftp://acme.okta.com\"\n",
            vec![
                "connectors/okta.toml:5: okta.base_url: `ftp://acme.okta.com` must be an https:// URL",
            ],
        ),
    ];
    for (body, expected) in cases {
        let (settings, problems) = check(&format!("{token}{body}"), &[]);
        assert!(settings.is_none(), "{body}");
        assert_eq!(problems, expected, "{body}");
    }
}

#[test]
fn option_problems_are_all_reported() {
    let (settings, problems) = check(
        "domain = \"acme.okta.com\"\napi_token = { env = \"PATH\" }\n\
         group_types = [\"OKTA_GROUP\", \"okta_group\", \"SECURITY\"]\n\
         page_size = 201\nrequests_per_second = 0\nfull_sync_every = \"1 dya\"\n",
        &[],
    );
    assert!(settings.is_none());
    assert_eq!(
        problems,
        [
            "connectors/okta.toml:6: okta.group_types: `OKTA_GROUP` is listed twice",
            "connectors/okta.toml:6: okta.group_types: unknown group type `SECURITY` (valid: \
             OKTA_GROUP, APP_GROUP, BUILT_IN)",
            "connectors/okta.toml:7: okta.page_size: 201 is out of range (1-200: Okta returns \
             at most 200 users a page)",
            "connectors/okta.toml:8: okta.requests_per_second: 0 is out of range (at least 1)",
            "connectors/okta.toml:9: okta.full_sync_every: `1 dya` is not a duration (`dya` is \
             not a unit; use s, m, h, d or w, such as \"7d\" or \"12h\")",
        ]
    );

    let (_, problems) = check(
        "domain = \"acme.okta.com\"\napi_token = { env = \"PATH\" }\ngroup_types = []\n",
        &[],
    );
    assert_eq!(
        problems,
        [
            "connectors/okta.toml:6: okta.group_types: must name at least one group type \
          (OKTA_GROUP, APP_GROUP, BUILT_IN)"
        ]
    );

    let (_, problems) = check(
        "domain = \"acme.okta.com\"\napi_token = { env = \"PATH\" }\ndeprovisioned = \"delete\"\n",
        &[],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("connectors/okta.toml:6: okta.deprovisioned: unknown variant `delete`, expected `inactive` or `skip`"),
        "{problems:?}"
    );

    let (_, problems) = check(
        "domain = \"acme.okta.com\"\napi_token = { env = \"PATH\" }\nscopes = 3\n",
        &[],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("okta.scopes"), "{problems:?}");
    assert!(problems[0].contains("a list of scopes"), "{problems:?}");
}

#[test]
fn the_kind_needs_its_table_and_only_its_table() {
    let (_, problems) = check("", &[]);
    assert_eq!(
        problems,
        [
            "connectors/okta.toml:3: okta.domain: [okta] needs `domain` (such as \"acme.okta.com\") or `base_url`",
            "connectors/okta.toml:3: okta.client_id: [okta] needs credentials: client_id with \
             private_key (an OAuth service app), or api_token = { env = \"NAME\" } (SSWS)",
        ]
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("connectors/okta.toml");
    let known: BTreeSet<String> = ["default".to_owned()].into();
    let context = Context {
        base_dir: dir.path(),
        known_mappings: &known,
        mappings_dir: PathBuf::from("mappings"),
    };
    for (text, expected) in [
        (
            "kind = \"okta\"\nmapping = \"default\"\n",
            "connectors/okta.toml:1: kind: kind = \"okta\" needs an [okta] table with `domain` \
             and credentials (`client_id` with `private_key`, or `api_token`)",
        ),
        (
            "kind = \"scim\"\nmapping = \"default\"\n[okta]\ndomain = \"acme.okta.com\"\n",
            "connectors/okta.toml:3: okta: [okta] does not apply to kind = \"scim\"",
        ),
    ] {
        let mut problems = Problems::new(dir.path());
        let source = Source { file: &file, text };
        assert!(load("okta", &source, &context, &mut problems).is_none());
        let problems: Vec<String> = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems, [expected]);
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
    assert_eq!(parse_duration(" 24h "), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
    for bad in [
        "",
        "h",
        "24",
        "24x",
        "-1h",
        "500ms",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    // humantime's syntax: fractions that come to whole seconds, and spaces.
    assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
}
