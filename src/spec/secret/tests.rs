//! Tests of secret references: how they are written, read and resolved.

use super::*;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Holder {
    secret: SecretRef,
}

fn parse(text: &str) -> Result<SecretRef, String> {
    toml::from_str::<Holder>(text)
        .map(|holder| holder.secret)
        .map_err(|err| err.message().to_owned())
}

#[test]
fn secret_refs_are_tables_with_one_key() {
    assert_eq!(
        parse("secret = { env = \"TOKEN\" }"),
        Ok(SecretRef::Env("TOKEN".into()))
    );
    assert_eq!(
        parse("[secret]\nfile = \"/run/secrets/token\"\n"),
        Ok(SecretRef::File("/run/secrets/token".into()))
    );
}

#[test]
fn a_plain_string_is_rejected_with_the_reference_message() {
    assert_eq!(
        parse("secret = \"hunter2\""),
        Err("secrets are given by reference, never inline: use { env = \"NAME\" } or { file = \"path\" }".into())
    );
}

#[test]
fn a_plain_string_is_reported_at_its_line_and_key() {
    use crate::spec::problems::{Problems, Source};
    let mut problems = Problems::new(Path::new("/c"));
    let source = Source {
        file: Path::new("/c/connectors/okta.toml"),
        text: "# okta\nsecret = \"hunter2\"\n",
    };
    assert!(source.parse::<Holder>(&mut problems).is_none());
    let shown: Vec<String> = problems
        .into_vec()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "connectors/okta.toml:2: secret: secrets are given by reference, never inline: use { env = \"NAME\" } or { file = \"path\" }"
        ]
    );
}

#[test]
fn malformed_references_are_rejected() {
    assert_eq!(
        parse("secret = {}"),
        Err("empty secret reference: use { env = \"NAME\" } or { file = \"path\" }".into())
    );
    assert_eq!(
        parse("secret = { env = \"A\", file = \"b\" }"),
        Err("a secret reference takes exactly one of `env` or `file`".into())
    );
    assert_eq!(
        parse("secret = { vault = \"x\" }"),
        Err("unknown secret source `vault`: use { env = \"NAME\" } or { file = \"path\" }".into())
    );
    assert_eq!(
        parse("secret = { env = \"\" }"),
        Err("`` is not a usable environment variable name".into())
    );
    assert_eq!(
        parse("secret = { file = \"\" }"),
        Err("the secret file path must not be empty".into())
    );
    assert_eq!(
        parse("secret = 3"),
        Err("invalid type: integer `3`, expected a secret reference { env = \"NAME\" } or { file = \"path\" }".into())
    );
}

#[test]
fn string_or_secret_takes_either() {
    #[derive(Debug, serde::Deserialize)]
    struct Url {
        url: StringOrSecret,
    }
    let url = |text: &str| toml::from_str::<Url>(text).map(|u| u.url);
    assert_eq!(
        url("url = \"sqlite://x.db\"").ok(),
        Some(StringOrSecret::Plain("sqlite://x.db".into()))
    );
    assert_eq!(
        url("url = { env = \"DB\" }").ok(),
        Some(StringOrSecret::Secret(SecretRef::Env("DB".into())))
    );
    assert_eq!(
        url("url = 3").map_err(|e| e.message().to_owned()).err(),
        Some(
            "invalid type: integer `3`, expected a string, { env = \"NAME\" } or { file = \"path\" }"
                .into()
        )
    );
}

#[test]
fn env_secrets_resolve_from_the_environment() {
    // PATH is set in any test environment; reading it needs no mutation.
    let expected = std::env::var("PATH").expect("PATH is set");
    let secret = SecretRef::Env("PATH".into())
        .resolve(Path::new("/"))
        .expect("PATH resolves");
    assert_eq!(secret.expose(), expected);

    let err = SecretRef::Env("IDSYNC_TEST_SURELY_UNSET_7F3A".into())
        .resolve(Path::new("/"))
        .expect_err("unset");
    assert_eq!(
        err.to_string(),
        "environment variable `IDSYNC_TEST_SURELY_UNSET_7F3A` is not set"
    );
}

#[test]
fn file_secrets_resolve_relative_to_base_dir_and_lose_trailing_newlines() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token"), "s3cret \n\r\n").expect("write");
    std::fs::write(dir.path().join("blank"), "\n").expect("write");
    let secret = SecretRef::File("token".into())
        .resolve(dir.path())
        .expect("resolves");
    assert_eq!(secret.expose(), "s3cret ");

    let err = SecretRef::File("blank".into())
        .resolve(dir.path())
        .expect_err("empty");
    assert_eq!(
        err.to_string(),
        format!(
            "secret file `{}` is empty",
            dir.path().join("blank").display()
        )
    );

    let err = SecretRef::File("missing".into())
        .resolve(dir.path())
        .expect_err("missing");
    let missing = dir.path().join("missing");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read secret file `{}`: ",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn secret_strings_are_masked() {
    let secret = SecretString::new("hunter2");
    assert_eq!(format!("{secret:?}"), "********");
    assert_eq!(format!("{secret}"), "********");
    assert_eq!(format!("{:?}", Some(secret.clone())), "Some(********)");
    assert_eq!(secret.expose(), "hunter2");
}
