//! `idsync check --connect`, second half: read the first users of a source (a full read,
//! stopped as soon as enough users arrived) and evaluate the mapping's expressions against
//! them, so that an attribute the mapping reads but the source never sends (a typo, a
//! property the API was not asked for, a missing permission that hides it) is reported
//! before the first sync skips every user.

use async_trait::async_trait;
use serde_json::Value;

use crate::config::MappingConfig;
use crate::connectors::{
    BatchSink, ConnectorError, Diagnosis, PullConnector, SinkError, SourceBatch,
};
use crate::model::SourceUser;
use crate::pipeline::context::user_context;

/// How many users `check --connect` reads by default.
pub const SAMPLE_USERS: usize = 50;

/// Collects users and stops the read once it has enough.
struct Sampler {
    wanted: usize,
    users: Vec<SourceUser>,
}

const ENOUGH: &str = "idsync: sample complete";

#[async_trait]
impl BatchSink for Sampler {
    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
        if let SourceBatch::Users(users) = batch {
            let room = self.wanted.saturating_sub(self.users.len());
            self.users.extend(users.into_iter().take(room));
        }
        if self.users.len() >= self.wanted {
            // Stops the connector's read: nothing more is needed.
            return Err(SinkError(ENOUGH.to_string()));
        }
        Ok(())
    }
}

/// The first `wanted` users of a full read (fewer when the source has fewer).
pub async fn sample_users(
    pull: &dyn PullConnector,
    wanted: usize,
) -> Result<Vec<SourceUser>, ConnectorError> {
    let mut sampler = Sampler {
        wanted: wanted.max(1),
        users: Vec::new(),
    };
    match pull.read(None, &mut sampler).await {
        Ok(_) => Ok(sampler.users),
        Err(_) if sampler.users.len() >= sampler.wanted => Ok(sampler.users),
        Err(error) => Err(error),
    }
}

/// Whether the context holds `key` (case-insensitively, as the expressions look it up)
/// with a value that is not null or empty.
fn has_value(context: &Value, key: &str) -> bool {
    let Some(object) = context.as_object() else {
        return false;
    };
    object
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .any(|(_, v)| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        })
}

/// One diagnosis per mapping expression that reads an attribute none of `users` has.
pub fn missing_attributes(mapping: &MappingConfig, users: &[SourceUser]) -> Vec<Diagnosis> {
    let contexts: Vec<Value> = users.iter().map(|u| user_context(u, &[])).collect();
    let mut out = Vec::new();
    for (key, expr) in mapping.expressions() {
        for root in expr.root_keys() {
            // `groups` is computed by the pipeline, never sent by a source.
            if root.eq_ignore_ascii_case("groups") {
                continue;
            }
            if !contexts.iter().any(|c| has_value(c, &root)) {
                out.push(Diagnosis::failed(
                    "mapping sample",
                    format!(
                        "mappings/{}.toml: {key} reads `{root}`, which none of the {} sampled \
                         user(s) has; check the name, the attributes the connector asks for, and \
                         the read permissions",
                        mapping.name,
                        users.len()
                    ),
                ));
            }
        }
    }
    out
}

/// Reads a sample and checks the mapping against it: the diagnoses `check --connect` prints
/// after the connector's own.
pub async fn check_mapping(pull: &dyn PullConnector, mapping: &MappingConfig) -> Vec<Diagnosis> {
    let users = match sample_users(pull, SAMPLE_USERS).await {
        Ok(users) => users,
        Err(error) => {
            return vec![Diagnosis::failed(
                "mapping sample",
                format!("reading a sample of users failed: {error}"),
            )];
        }
    };
    if users.is_empty() {
        return vec![Diagnosis::ok(
            "mapping sample",
            "the source has no users to check the mapping against",
        )];
    }
    let missing = missing_attributes(mapping, &users);
    if missing.is_empty() {
        vec![Diagnosis::ok(
            "mapping sample",
            format!(
                "every attribute the mapping reads is present in the {} sampled user(s)",
                users.len()
            ),
        )]
    } else {
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnRemove;
    use crate::connectors::{ReadMode, ReadSummary};
    use crate::pipeline::expr::parse;

    fn user(id: &str, attributes: Value) -> SourceUser {
        SourceUser {
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            ..super::super::read::tests::user(id)
        }
    }

    /// Sends users in pages of 10, forever unless stopped.
    struct Endless {
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl PullConnector for Endless {
        fn kind(&self) -> &'static str {
            "test"
        }
        async fn read(
            &self,
            _checkpoint: Option<&str>,
            sink: &mut dyn BatchSink,
        ) -> Result<ReadSummary, ConnectorError> {
            for page in 0..1000 {
                self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let users = (0..10)
                    .map(|i| {
                        user(
                            &format!("u{page}-{i}"),
                            serde_json::json!({"userPrincipalName": "x"}),
                        )
                    })
                    .collect();
                sink.accept(SourceBatch::Users(users))
                    .await
                    .map_err(ConnectorError::Sink)?;
            }
            Ok(ReadSummary {
                mode: ReadMode::Full,
                complete: true,
                next_checkpoint: None,
            })
        }
    }

    #[tokio::test]
    async fn a_sample_stops_the_read_early() {
        let source = Endless {
            reads: Default::default(),
        };
        let users = sample_users(&source, 25).await.expect("sample");
        assert_eq!(users.len(), 25);
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn an_attribute_no_sampled_user_has_is_reported() {
        let mut mapping = MappingConfig::pass_through("staff", OnRemove::Disable, 500, 20.0);
        mapping.attributes.user_name = Some(parse("userPrinciplName | lower").expect("expr"));
        mapping
            .attributes
            .custom
            .insert("dept".into(), parse("department").expect("expr"));
        let users = [
            user(
                "a",
                serde_json::json!({"userPrincipalName": "A@x", "department": "IT"}),
            ),
            user(
                "b",
                serde_json::json!({"userPrincipalName": "B@x", "department": null}),
            ),
        ];
        let found = missing_attributes(&mapping, &users);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].ok);
        assert!(
            found[0]
                .detail
                .contains("attributes.user_name reads `userPrinciplName`"),
            "{}",
            found[0].detail
        );
        // Normalised fields (userName, emails, ...) count as present.
        let mut fine = MappingConfig::pass_through("staff", OnRemove::Disable, 500, 20.0);
        fine.attributes.user_name = Some(parse("userName | lower").expect("expr"));
        assert!(missing_attributes(&fine, &users).is_empty());
    }
}
