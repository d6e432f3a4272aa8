//! The source attributes each connector kind puts into its records, so that `idsync
//! check` can flag a mapping expression reading an attribute no record of that kind has
//! (a typo such as `userPrinciplName` makes every user's field empty and skips them all).
//!
//! Only the top-level key an expression reads is checked, case-insensitively (as the
//! expression lookup is). Every kind also has the normalised fields the mapping context
//! overlays (`externalId`, `userName`, `active`, `groups`, `displayName`, `name`,
//! `emails`). Free-form namespaces are never flagged:
//! - `file`: any JSON key or CSV column is an attribute, so nothing is flagged;
//! - `azure`: Microsoft Graph returns only the properties in `$select`: the connector's
//!   default properties plus its `extra_user_attributes` (extension attributes included)
//!   are known, anything else is flagged with that hint;
//! - `okta`: everything under `profile` (custom profile attributes);
//! - `keycloak`: everything under `attributes` (the realm's user attributes);
//! - `google`: everything under `customSchemas`;
//! - `scim`: any key that is a schema URN (the enterprise and custom extensions).
//!
//! The lists follow the vendors' user resources as the connectors keep them:
//! - Okta: <https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/>
//! - Keycloak: <https://www.keycloak.org/docs-api/latest/rest-api/index.html#UserRepresentation>
//! - Google: <https://developers.google.com/admin-sdk/directory/reference/rest/v1/users>
//! - Microsoft Graph: <https://learn.microsoft.com/en-us/graph/api/resources/user>
//! - SCIM: RFC 7643 section 4.1 (User) and 4.3 (enterprise extension).

use std::path::Path;

use super::connector::ConnectorSettings;
use super::{Config, MappingConfig, Problem};
use crate::connectors::kind::UserKeys;
use crate::filter::USER_MULTI_VALUED;

/// Fields the mapping context adds to every user record (see `pipeline::context`).
const CONTEXT: &[&str] = &[
    "externalId",
    "userName",
    "active",
    "groups",
    "displayName",
    "name",
    "emails",
];

/// SCIM core User attributes that hold one value (RFC 7643 section 4.1) and common keys;
/// the multi-valued ones are `filter::USER_MULTI_VALUED`.
const SCIM_SINGLE_VALUED: &[&str] = &[
    "id",
    "schemas",
    "meta",
    "externalId",
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
];

/// What a connector's user records hold.
enum Known<'a> {
    /// Any key (file snapshots).
    Anything,
    /// These keys, plus free-form ones for which `free_form` says yes.
    Keys {
        keys: Vec<&'a str>,
        free_form: fn(&str) -> bool,
        /// Said after the problem, e.g. how to make Graph return a property.
        hint: &'static str,
    },
}

fn never(_: &str) -> bool {
    false
}

fn known(settings: &ConnectorSettings) -> Known<'_> {
    fn with_context(keys: Vec<&str>) -> Vec<&str> {
        CONTEXT.iter().copied().chain(keys).collect()
    }
    match settings.pull_user_keys() {
        Some(UserKeys::Any) => Known::Anything,
        Some(UserKeys::Listed { keys, hint }) => Known::Keys {
            keys: with_context(keys),
            free_form: never,
            hint,
        },
        None => Known::Keys {
            keys: with_context(
                SCIM_SINGLE_VALUED
                    .iter()
                    .chain(USER_MULTI_VALUED)
                    .copied()
                    .collect(),
            ),
            free_form: |key| key.to_ascii_lowercase().starts_with("urn:"),
            hint: " (extension attributes are read under their schema URN, in backquotes)",
        },
    }
}

/// Edit distance between two strings, case-insensitive, a swap of two neighbouring
/// characters counting as one edit (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known key closest to `key`, when close enough to be a typo of it.
pub fn did_you_mean<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (key.chars().count() / 4).clamp(1, 3);
    known
        .into_iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Attribute names the mapping's expressions read that no user record of this
/// connector holds, as warnings with file, line and key. `base_dir` shortens the path.
pub fn unknown_attributes(
    mapping: &MappingConfig,
    settings: &ConnectorSettings,
    connector_id: &str,
    base_dir: &Path,
) -> Vec<Problem> {
    let Known::Keys {
        keys,
        free_form,
        hint,
    } = known(settings)
    else {
        return Vec::new();
    };
    let file = mapping
        .file
        .strip_prefix(base_dir)
        .unwrap_or(&mapping.file)
        .to_path_buf();
    let mut out = Vec::new();
    for (key, expr) in mapping.expressions() {
        for root in expr.root_keys() {
            if free_form(&root) || keys.iter().any(|k| k.eq_ignore_ascii_case(&root)) {
                continue;
            }
            let suggestion = match did_you_mean(&root, keys.iter().copied()) {
                Some(close) => format!("; did you mean `{close}`?"),
                None => hint.to_string(),
            };
            out.push(Problem {
                file: file.clone(),
                line: mapping.expression_lines.get(&key).copied(),
                key: Some(key.clone()),
                message: format!(
                    "`{root}` is not an attribute of the users of connector `{connector_id}` \
                     (kind {}){suggestion}",
                    settings.kind()
                ),
            });
        }
    }
    out
}

/// [`unknown_attributes`] for every enabled connector of the configuration, each mapping
/// and kind once.
pub fn check(config: &Config) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for connector in config.connectors.values().filter(|c| c.enabled) {
        let mapping = config.mapping_for(connector);
        for problem in unknown_attributes(
            mapping,
            &connector.settings,
            &connector.id,
            &config.base_dir,
        ) {
            // The same typo seen through a second connector of the same kind adds nothing.
            let seen = out.iter().any(|p| {
                p.file == problem.file
                    && p.key == problem.key
                    && p.message.split(" of the users").next()
                        == problem.message.split(" of the users").next()
            });
            if !seen {
                out.push(problem);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AzureCredential, AzureSettings, OnRemove, SecretString};
    use crate::pipeline::expr::parse;

    fn mapping(attributes: &[(&str, &str)]) -> MappingConfig {
        let mut mapping = MappingConfig::pass_through("staff", OnRemove::Disable, 500, 20.0);
        mapping.file = "/etc/idsync/mappings/staff.toml".into();
        for (i, (key, text)) in attributes.iter().enumerate() {
            let expr = parse(text).expect("valid expression");
            match *key {
                "user_name" => mapping.attributes.user_name = Some(expr),
                "email" => mapping.attributes.email = Some(expr),
                custom => {
                    mapping.attributes.custom.insert(custom.to_string(), expr);
                }
            }
            let full = match *key {
                "user_name" | "email" => format!("attributes.{key}"),
                custom => format!("attributes.custom.{custom}"),
            };
            mapping.expression_lines.insert(full, i + 3);
        }
        mapping
    }

    fn azure() -> ConnectorSettings {
        let mut settings = AzureSettings::new(
            "tenant",
            "client",
            AzureCredential::Secret(SecretString::new("s")),
        );
        settings
            .user_properties
            .push("extension_0a1b_costCenter".into());
        ConnectorSettings::Azure(settings)
    }

    fn messages(problems: Vec<Problem>) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_issue_typo_is_flagged_with_a_suggestion() {
        let m = mapping(&[("user_name", "userPrinciplName | lower")]);
        assert_eq!(
            messages(unknown_attributes(
                &m,
                &azure(),
                "entra",
                Path::new("/etc/idsync")
            )),
            [
                "mappings/staff.toml:3: attributes.user_name: `userPrinciplName` is not an \
                 attribute of the users of connector `entra` (kind azure); did you mean \
                 `userPrincipalName`?"
            ]
        );
    }

    #[test]
    fn known_selected_and_context_attributes_pass_in_any_case() {
        let m = mapping(&[
            ("user_name", "UserPrincipalName | lower ?? userName"),
            ("email", "mail ?? emails[0].value"),
            (
                "cost",
                "extension_0a1b_costCenter ?? onPremisesExtensionAttributes.extensionAttribute1",
            ),
        ]);
        assert!(unknown_attributes(&m, &azure(), "entra", Path::new("/")).is_empty());
    }

    #[test]
    fn an_unselected_graph_property_says_how_to_ask_for_it() {
        let m = mapping(&[("site", "extension_99_site")]);
        let problems = messages(unknown_attributes(&m, &azure(), "entra", Path::new("/")));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].ends_with("add it to `azure.extra_user_attributes` if it exists)"),
            "{problems:?}"
        );
    }

    #[test]
    fn free_form_namespaces_are_never_flagged() {
        let scim = ConnectorSettings::Scim(crate::config::ScimTenantSettings::default());
        let m = mapping(&[(
            "department",
            "`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.department ?? title",
        )]);
        assert!(unknown_attributes(&m, &scim, "okta-scim", Path::new("/")).is_empty());
        let m = mapping(&[("department", "nickNme")]);
        assert_eq!(
            unknown_attributes(&m, &scim, "okta-scim", Path::new("/"))[0].message,
            "`nickNme` is not an attribute of the users of connector `okta-scim` (kind scim); \
             did you mean `nickName`?"
        );
        let file = ConnectorSettings::File(crate::config::FileSettings {
            path: "/s.json".into(),
            format: crate::config::FileFormat::Json,
        });
        let m = mapping(&[("user_name", "anything_at_all")]);
        assert!(unknown_attributes(&m, &file, "hr", Path::new("/")).is_empty());
    }

    #[test]
    fn suggestions_need_a_close_name() {
        assert_eq!(
            did_you_mean("userPrinciplName", ["mail", "userPrincipalName"]),
            Some("userPrincipalName")
        );
        assert_eq!(
            did_you_mean("costCentre", ["mail", "userPrincipalName"]),
            None
        );
        assert_eq!(did_you_mean("mial", ["mail"]), Some("mail"));
    }
}
