//! The loader over `kind = "google"` files: the `[google]` table's checks, with file,
//! line and key.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::super::{ConnectorConfig, ConnectorSettings, Context, load};
use crate::connectors::google::*;
use crate::spec::problems::{Problems, Source};

const KEY_FILE: &str = include_str!("../../../../tests/support/keys/google-service-account.json");
const HEAD: &str = "kind = \"google\"\nmapping = \"default\"\n[google]\n";

/// Loads `connectors/<id>.toml` with `text`, under a temp dir holding `files`.
fn check(text: &str, files: &[(&str, &str)]) -> (Option<ConnectorConfig>, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write");
    }
    let file = dir.path().join("connectors/gws.toml");
    let mut problems = Problems::new(dir.path());
    let known: BTreeSet<String> = ["default".to_owned()].into();
    let context = Context {
        base_dir: dir.path(),
        known_mappings: &known,
        mappings_dir: PathBuf::from("mappings"),
    };
    let source = Source { file: &file, text };
    let connector = load("gws", &source, &context, &mut problems);
    let problems = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    (connector, problems)
}

fn google(text: &str) -> (Option<GoogleSettings>, Vec<String>) {
    let (connector, problems) = check(
        &format!("{HEAD}{text}"),
        &[("key.json", KEY_FILE), ("oauth.json", OAUTH_CLIENT)],
    );
    let settings = connector.map(|c| match c.settings {
        ConnectorSettings::Google(g) => g,
        other => panic!("not a google connector: {other:?}"),
    });
    (settings, problems)
}

const OAUTH_CLIENT: &str =
    "{\"installed\": {\"client_id\": \"1.apps.googleusercontent.com\", \"client_secret\": \"x\"}}";
const KEY: &str = "service_account_key = { file = \"key.json\" }\n";

#[test]
fn defaults() {
    let (settings, problems) = google(&format!("{KEY}subject = \"admin@example.com\"\n"));
    assert!(problems.is_empty(), "{problems:?}");
    let g = settings.expect("valid");
    assert_eq!(
        g.key.client_email,
        "idsync-reader@idsync-test.iam.gserviceaccount.com"
    );
    assert_eq!(g.key.client_id.as_deref(), Some("100000000000000000042"));
    assert_eq!(
        g.key.private_key_id.as_deref(),
        Some("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c")
    );
    assert_eq!(g.subject, "admin@example.com");
    assert_eq!(
        g.directory,
        GoogleDirectoryScope::Customer("my_customer".into())
    );
    assert_eq!(g.scopes, [GOOGLE_SCOPE_USERS, GOOGLE_SCOPE_GROUPS]);
    assert_eq!(g.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(g.api_base_url, "https://admin.googleapis.com");
    assert!(g.include_suspended && g.include_archived);
    assert_eq!((g.page_size, g.groups_page_size()), (500, 200));
    assert_eq!(g.requests_per_second.map(|r| r.get()), Some(40));
    assert!(format!("{g:?}").contains("private_key: ********"));
}

#[test]
fn everything_set() {
    let (settings, problems) = google(&format!(
        "{KEY}subject = \"admin@example.com\"\ndomain = \"Example.COM\"\n\
         scopes = [\"https://www.googleapis.com/auth/admin.directory.user\", \
         \"https://www.googleapis.com/auth/admin.directory.group.readonly\", \
         \"https://www.googleapis.com/auth/admin.directory.group.member.readonly\"]\n\
         token_url = \"http://127.0.0.1:9/token\"\napi_base_url = \"http://127.0.0.1:9/\"\n\
         include_suspended = false\ninclude_archived = false\npage_size = 100\n\
         requests_per_second = 5\nallow_insecure_http = true\n"
    ));
    assert!(problems.is_empty(), "{problems:?}");
    let g = settings.expect("valid");
    assert_eq!(
        g.directory,
        GoogleDirectoryScope::Domain("example.com".into())
    );
    assert_eq!(g.directory.query(), ("domain", "example.com"));
    assert_eq!(g.scopes.len(), 3);
    assert_eq!(g.token_url, "http://127.0.0.1:9/token");
    assert_eq!(g.api_base_url, "http://127.0.0.1:9");
    assert!(!g.include_suspended && !g.include_archived);
    assert_eq!((g.page_size, g.groups_page_size()), (100, 100));
    assert_eq!(g.requests_per_second.map(|r| r.get()), Some(5));
}

#[test]
fn the_key_can_come_from_the_environment() {
    // CARGO_PKG_NAME is set for tests but holds no JSON: the message says so.
    let (settings, problems) = google(
        "service_account_key = { env = \"CARGO_PKG_NAME\" }\nsubject = \"admin@example.com\"\n",
    );
    assert!(settings.is_none());
    assert_eq!(
        problems,
        [
            "connectors/gws.toml:4: google.service_account_key: env `CARGO_PKG_NAME` is not a Google service-account key file: not JSON (line 1, column 1)"
        ]
    );
}

#[test]
fn key_file_mistakes() {
    let (_, problems) = google(
        "service_account_key = { file = \"oauth.json\" }\nsubject = \"admin@example.com\"\n",
    );
    assert_eq!(
        problems,
        [
            "connectors/gws.toml:4: google.service_account_key: file `oauth.json` is not a Google service-account key file: it has no `\"type\": \"service_account\"`"
        ]
    );
    let (_, problems) = google(
        "service_account_key = { file = \"missing.json\" }\nsubject = \"admin@example.com\"\n",
    );
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with(
            "connectors/gws.toml:4: google.service_account_key: cannot read secret file `"
        ),
        "{problems:?}"
    );
    let (_, problems) = google(
        "service_account_key = \"{\\\"type\\\": \\\"service_account\\\"}\"\nsubject = \"admin@example.com\"\n",
    );
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("secrets are given by reference, never inline"),
        "{problems:?}"
    );

    assert_eq!(
        parse_service_account_key("{\"type\": \"authorized_user\"}").expect_err("user"),
        "is a `authorized_user` credential, not a service-account key: create a JSON key for a \
         service account (Google Cloud console › IAM & Admin › Service accounts › Keys)"
    );
    assert_eq!(
        parse_service_account_key("[1]").expect_err("array"),
        "is not a Google service-account key file: expected a JSON object"
    );
    assert_eq!(
        parse_service_account_key("{\"type\": \"service_account\", \"private_key\": \"x\"}")
            .expect_err("no email"),
        "is a service-account key without `client_email`: download the key again"
    );
    let broken = "{\"type\": \"service_account\", \"client_email\": \"a@b.c\", \
                  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nSECRETSTUFF\\n-----END PRIVATE KEY-----\\n\"}";
    let why = parse_service_account_key(broken).expect_err("bad key");
    assert!(
        why.starts_with("has a `private_key` that is not a usable RSA private key"),
        "{why}"
    );
    assert!(!why.contains("SECRETSTUFF"), "{why}");
}

#[test]
fn setting_mistakes_are_reported_with_line_and_key() {
    let (settings, problems) = google(&format!(
        "{KEY}subject = \"admin\"\ncustomer = \"my_customer\"\ndomain = \"example.com\"\n\
         scopes = [\"admin.directory.user.readonly\"]\ntoken_url = \"ftp://x\"\n\
         api_base_url = \"https://admin.googleapis.com/admin/directory/v1\"\npage_size = 501\n\
         requests_per_second = 0\n"
    ));
    assert!(settings.is_none());
    assert_eq!(
        problems,
        [
            "connectors/gws.toml:5: google.subject: `admin` is not an email address: give the Workspace admin the service account acts as (domain-wide delegation)",
            "connectors/gws.toml:7: google.domain: set either `customer` or `domain`, not both",
            "connectors/gws.toml:8: google.scopes: `admin.directory.user.readonly` is not an OAuth scope such as https://www.googleapis.com/auth/admin.directory.user.readonly",
            "connectors/gws.toml:8: google.scopes: listing users needs the scope https://www.googleapis.com/auth/admin.directory.user.readonly (or admin.directory.user)",
            "connectors/gws.toml:8: google.scopes: listing groups and their members needs the scope https://www.googleapis.com/auth/admin.directory.group.readonly (or admin.directory.group)",
            "connectors/gws.toml:9: google.token_url: `ftp://x` must be an https:// URL",
            "connectors/gws.toml:10: google.api_base_url: give the API root without `/admin/directory/v1` (such as https://admin.googleapis.com)",
            "connectors/gws.toml:11: google.page_size: 501 is out of range (1-500; groups and members pages are capped at 200)",
            "connectors/gws.toml:12: google.requests_per_second: 0 is out of range (at least 1)",
        ]
    );
}

#[test]
fn missing_and_misplaced_tables() {
    let (_, problems) = check("kind = \"google\"\nmapping = \"default\"\n", &[]);
    assert_eq!(
        problems,
        [
            "connectors/gws.toml:1: kind: kind = \"google\" needs a [google] table with `service_account_key` and `subject`"
        ]
    );
    let (_, problems) = check(&format!("{HEAD}{KEY}"), &[("key.json", KEY_FILE)]);
    assert_eq!(
        problems,
        ["connectors/gws.toml:3: google.subject: missing field `subject`"]
    );
    let (_, problems) = check(
        "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"x.json\"\n[google]\nsubject = \"a@b.c\"\n",
        &[("x.json", "")],
    );
    // The table is parsed before its kind is looked at.
    assert_eq!(
        problems,
        ["connectors/gws.toml:5: google.service_account_key: missing field `service_account_key`"]
    );
    let (_, problems) = check(
        &format!(
            "kind = \"file\"\nmapping = \"default\"\n[file]\npath = \"x.json\"\n[google]\n{KEY}subject = \"a@b.c\"\n"
        ),
        &[("x.json", ""), ("key.json", KEY_FILE)],
    );
    assert_eq!(
        problems,
        ["connectors/gws.toml:5: google: [google] does not apply to kind = \"file\""]
    );
    let (_, problems) = check(
        &format!("{HEAD}{KEY}subject = \"a@b.c\"\nadmin = \"x\"\n"),
        &[("key.json", KEY_FILE)],
    );
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("unknown field `admin`"),
        "{problems:?}"
    );
}
