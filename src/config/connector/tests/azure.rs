//! The loader over `kind = "azure"` files and the `[azure]` table's own checks.

use std::path::Path;
use std::time::Duration;

use crate::connectors::azure::*;
use crate::spec::problems::{Problems, Source};
use crate::spec::{SecretRef, SecretString, parse_duration};

#[test]
fn durations() {
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
    assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert!(parse_duration("7").unwrap_err().contains("needs a unit"));
    assert!(
        parse_duration("d")
            .unwrap_err()
            .contains("a number goes before")
    );
    // humantime's syntax: long unit names and spaces read as well.
    assert_eq!(parse_duration("7 days"), Ok(Duration::from_secs(604_800)));
    assert!(
        parse_duration("7 fortnights")
            .unwrap_err()
            .contains("not a duration")
    );
    assert!(parse_duration("").is_err());
    assert!(parse_duration("99999999999999999999w").is_err());
}

#[test]
fn property_names() {
    for ok in ["jobTitle", "extension_1a2b_costCenter", "a1"] {
        assert!(is_property_name(ok), "{ok}");
    }
    for bad in ["", "1a", "job Title", "a,b", "manager/id"] {
        assert!(!is_property_name(bad), "{bad}");
    }
}

#[test]
fn pem_blocks() {
    let text = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
    let (pem, der) = pem_block(text, &["CERTIFICATE"]).expect("block");
    assert_eq!(der, vec![0, 1, 2, 3]);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem_block(text, &["PRIVATE KEY"]).is_none());
    assert!(
        pem_block(
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
            &["CERTIFICATE"]
        )
        .is_none()
    );
}

#[test]
fn defaults() {
    let s = AzureSettings::new(
        "t",
        "c",
        AzureCredential::Unavailable {
            key: "azure.client_secret".into(),
            reason: "x".into(),
        },
    );
    assert_eq!(
        s.token_url,
        "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    );
    assert_eq!(s.page_size, 999);
    assert!(s.delta && s.include_guests);
    assert!(s.user_properties.iter().any(|p| p == "accountEnabled"));
    assert_eq!(
        format!("{:?}", s.credential),
        "Unavailable(azure.client_secret: x)"
    );
    let secret = AzureCredential::Secret(SecretString::new("hunter2"));
    assert!(!format!("{secret:?}").contains("hunter2"));
}

/// Loads `connectors/<id>.toml` (text) in a temp dir holding `files`, with mapping
/// `default`.
fn check(text: &str, files: &[(&str, &str)]) -> (Option<AzureSettings>, Vec<String>) {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write");
    }
    let file = dir.path().join("connectors/graph.toml");
    let mut problems = Problems::new(dir.path());
    let known: BTreeSet<String> = ["default".to_owned()].into();
    let context = super::super::Context {
        base_dir: dir.path(),
        known_mappings: &known,
        mappings_dir: PathBuf::from("mappings"),
    };
    let source = Source { file: &file, text };
    let connector = super::super::load("graph", &source, &context, &mut problems);
    let problems = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    let settings = connector.map(|c| match c.settings {
        super::super::ConnectorSettings::Azure(s) => s,
        other => panic!("not azure: {}", other.kind()),
    });
    (settings, problems)
}

const HEAD: &str = "kind = \"azure\"\nmapping = \"default\"\n[azure]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\n";
const UNSET: &str = "IDSYNC_TEST_UNSET_AZURE_SECRET_5C1D";

fn cert_and_key() -> (String, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/keys");
    (
        std::fs::read_to_string(dir.join("graph-test-cert.pem")).expect("cert"),
        std::fs::read_to_string(dir.join("graph-test-key.pem")).expect("key"),
    )
}

#[test]
fn a_valid_connector_with_a_secret_and_defaults() {
    // PATH is set wherever the tests run; a real config names its own variable.
    let (settings, problems) = check(
        &format!("{HEAD}client_secret = {{ env = \"PATH\" }}\n"),
        &[],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let s = settings.expect("valid");
    assert_eq!(s.tenant_id, "contoso.onmicrosoft.com");
    assert_eq!(
        s.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(s.graph_url, "https://graph.microsoft.com");
    assert!(matches!(s.credential, AzureCredential::Secret(_)));
    assert!(s.include_guests && s.delta);
    assert_eq!(s.page_size, 999);
    assert_eq!(s.requests_per_second.map(|r| r.get()), None);
    assert_eq!(s.full_sync_every, Duration::from_secs(7 * 86_400));
    assert_eq!(s.max_retry_time, Duration::from_secs(300));
    for p in [
        "id",
        "userPrincipalName",
        "mail",
        "givenName",
        "surname",
        "displayName",
        "accountEnabled",
        "userType",
    ] {
        assert!(s.user_properties.iter().any(|x| x == p), "{p}");
    }
}

#[test]
fn every_setting() {
    let (cert, key) = cert_and_key();
    let (settings, problems) = check(
        &format!(
            "{HEAD}certificate = {{ file = \"cert.pem\" }}\nprivate_key = {{ file = \"key.pem\" }}\n\
             authority = \"https://login.microsoftonline.us/\"\ngraph_url = \"https://graph.microsoft.us\"\n\
             include_guests = false\ndelta = false\nuser_filter = \"accountEnabled eq true\"\n\
             group_filter = \"securityEnabled eq true\"\npage_size = 500\nrequests_per_second = 5\n\
             full_sync_every = \"1d12h\"\nmax_retry_time = \"30s\"\n\
             extra_user_attributes = [\"costCenter\", \"extension_abc_badge\", \"mail\"]\n\
             extra_group_attributes = [\"visibility\"]\n"
        ),
        &[("cert.pem", &cert), ("key.pem", &key)],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let s = settings.expect("valid");
    assert_eq!(
        s.token_url,
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(s.graph_url, "https://graph.microsoft.us");
    let AzureCredential::Certificate {
        certificate_der,
        private_key_pem,
    } = &s.credential
    else {
        panic!("certificate credential: {:?}", s.credential);
    };
    assert!(certificate_der.len() > 500);
    assert!(
        private_key_pem
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(!s.include_guests && !s.delta);
    assert_eq!(s.user_filter.as_deref(), Some("accountEnabled eq true"));
    assert_eq!(s.group_filter.as_deref(), Some("securityEnabled eq true"));
    assert_eq!(s.page_size, 500);
    assert_eq!(s.requests_per_second.map(|r| r.get()), Some(5));
    assert_eq!(s.full_sync_every, Duration::from_secs(129_600));
    assert_eq!(s.max_retry_time, Duration::from_secs(30));
    assert_eq!(
        &s.user_properties[AZURE_USER_PROPERTIES.len()..],
        ["costCenter", "extension_abc_badge"]
    );
    assert_eq!(
        s.group_properties.last().map(String::as_str),
        Some("visibility")
    );

    // One PEM file holding both the key and the certificate works for both settings.
    let both = format!("{key}{cert}");
    let (settings, problems) = check(
        &format!(
            "{HEAD}certificate = {{ file = \"both.pem\" }}\nprivate_key = {{ file = \"both.pem\" }}\ntoken_url = \"http://127.0.0.1:9/t/token\"\nallow_insecure_http = true\n"
        ),
        &[("both.pem", &both)],
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        settings.expect("valid").token_url,
        "http://127.0.0.1:9/t/token"
    );
}

#[test]
fn mistakes_have_file_line_and_key() {
    let (settings, problems) = check(
        "kind = \"azure\"\nmapping = \"default\"\n[azure]\ntenant_id = \"common\"\nclient_id = \" \"\n\
             client_secret = { env = \"PATH\" }\ngraph_url = \"https://graph.microsoft.com/v1.0\"\n\
             authority = \"ftp://login\"\npage_size = 1000\nrequests_per_second = 0\n\
             full_sync_every = \"7 dayz\"\nmax_retry_time = \"0s\"\nuser_filter = \"userType eq 'Member'\"\n\
             extra_user_attributes = [\"job title\", \"members\"]\n",
        &[],
    );
    assert!(settings.is_none());
    assert_eq!(
        problems,
        [
            "connectors/graph.toml:4: azure.tenant_id: `common` is not a tenant: a daemon needs the directory (tenant) id or a verified domain such as contoso.onmicrosoft.com",
            "connectors/graph.toml:5: azure.client_id: must not be empty",
            "connectors/graph.toml:8: azure.authority: `ftp://login` must be an https:// URL",
            "connectors/graph.toml:7: azure.graph_url: `https://graph.microsoft.com/v1.0` must be the host only, without `/v1.0`, such as https://graph.microsoft.com",
            "connectors/graph.toml:9: azure.page_size: 1000 is out of range (1-999, Graph's largest $top)",
            "connectors/graph.toml:10: azure.requests_per_second: 0 is out of range (at least 1)",
            "connectors/graph.toml:11: azure.full_sync_every: `7 dayz` is not a duration (`dayz` is not a unit; use s, m, h, d or w, such as \"7d\" or \"12h\")",
            "connectors/graph.toml:12: azure.max_retry_time: must be longer than 0s",
            "connectors/graph.toml:13: azure.user_filter: needs delta = false: Graph's delta query filters only by id, so a filtered connector reads with plain listings",
            "connectors/graph.toml:14: azure.extra_user_attributes: `job title` is not a Graph property name (letters, digits and `_`, such as jobTitle or extension_<appid>_costCenter)",
            "connectors/graph.toml:14: azure.extra_user_attributes: `members` is always read",
        ]
    );
}

#[test]
fn credential_mistakes() {
    let (cert, key) = cert_and_key();
    let files = [
        ("cert.pem", cert.as_str()),
        ("key.pem", key.as_str()),
        ("junk.pem", "hello\n"),
    ];
    let cases: [(&str, &str); 7] = [
        (
            "",
            "connectors/graph.toml:5: azure.client_secret: [azure] needs client_secret = { env = \"NAME\" } (or { file = \"path\" }), or certificate and private_key",
        ),
        (
            "client_secret = { env = \"PATH\" }\ncertificate = { file = \"cert.pem\" }\nprivate_key = { file = \"key.pem\" }\n",
            "connectors/graph.toml:6: azure.client_secret: give either client_secret or certificate + private_key, not both",
        ),
        (
            "certificate = { file = \"cert.pem\" }\n",
            "connectors/graph.toml:6: azure.private_key: certificate needs private_key = { file = \"...\" } (the key of that certificate)",
        ),
        (
            "private_key = { file = \"key.pem\" }\n",
            "connectors/graph.toml:6: azure.certificate: private_key needs certificate = { file = \"...\" } (the certificate registered on the app)",
        ),
        (
            "certificate = { file = \"junk.pem\" }\nprivate_key = { file = \"key.pem\" }\n",
            "connectors/graph.toml:6: azure.certificate: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        ),
        (
            "certificate = { file = \"cert.pem\" }\nprivate_key = { file = \"cert.pem\" }\n",
            "connectors/graph.toml:7: azure.private_key: no PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----) in it",
        ),
        (
            "client_secret = \"inline\"\n",
            "connectors/graph.toml:6: azure.client_secret: secrets are given by reference, never inline: use { env = \"NAME\" } or { file = \"path\" }",
        ),
    ];
    for (tail, expected) in cases {
        let (settings, problems) = check(&format!("{HEAD}{tail}"), &files);
        assert!(settings.is_none(), "{tail}");
        assert_eq!(problems, [expected], "{tail}");
    }
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let (_, problems) = check(
        &format!(
            "{HEAD}certificate = {{ file = \"cert.pem\" }}\nprivate_key = {{ file = \"enc.pem\" }}\n"
        ),
        &[("cert.pem", &cert), ("enc.pem", encrypted)],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("azure.private_key: the private key is encrypted"),
        "{problems:?}"
    );
}

#[test]
fn a_missing_secret_fails_an_enabled_connector_only() {
    let unset = SecretRef::Env(UNSET.to_owned())
        .resolve(Path::new("."))
        .expect_err("unset")
        .to_string();
    let (settings, problems) = check(
        &format!("{HEAD}client_secret = {{ env = \"{UNSET}\" }}\n"),
        &[],
    );
    assert!(settings.is_none());
    assert_eq!(
        problems,
        [format!(
            "connectors/graph.toml:6: azure.client_secret: {unset}"
        )]
    );
    let disabled = HEAD.replace(
        "mapping = \"default\"\n",
        "mapping = \"default\"\nenabled = false\n",
    );
    let (settings, problems) = check(
        &format!("{disabled}client_secret = {{ env = \"{UNSET}\" }}\n"),
        &[],
    );
    assert!(problems.is_empty(), "{problems:?}");
    match settings.expect("accepted").credential {
        AzureCredential::Unavailable { key, reason } => {
            assert_eq!(key, "azure.client_secret");
            assert_eq!(reason, unset);
        }
        other => panic!("{other:?}"),
    }
    // Everything else of a disabled connector is still checked.
    let (settings, problems) = check(
        &format!("{disabled}client_secret = {{ env = \"{UNSET}\" }}\npage_size = 0\n"),
        &[],
    );
    assert!(settings.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn the_table_must_match_the_kind() {
    let (_, problems) = check("kind = \"azure\"\nmapping = \"default\"\n", &[]);
    assert_eq!(
        problems,
        [
            "connectors/graph.toml:1: kind: kind = \"azure\" needs an [azure] table with `tenant_id`, `client_id` and `client_secret` (or `certificate` and `private_key`)"
        ]
    );
    let (_, problems) = check(
        "kind = \"scim\"\nmapping = \"default\"\n[azure]\ntenant_id = \"t\"\nclient_id = \"c\"\n",
        &[],
    );
    assert_eq!(
        problems,
        ["connectors/graph.toml:3: azure: [azure] does not apply to kind = \"scim\""]
    );
    let (_, problems) = check(
        &format!("{HEAD}client_secret = {{ env = \"PATH\" }}\nscope = \"x\"\n"),
        &[],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("unknown field `scope`"),
        "{problems:?}"
    );
}
