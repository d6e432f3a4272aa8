//! Pull connectors: the seam every scheduled source (file now; Graph, Okta, Google,
//! Keycloak and LDAP next) plugs into, and `http`, the client, OAuth tokens, rate limit,
//! retries and paging those API connectors share.
//!
//! A connector never builds its whole source in one vector: it pushes [`SourceBatch`]es
//! into a [`BatchSink`] as pages arrive, starting from the checkpoint the last complete
//! run stored, and finally says in a [`ReadSummary`] whether the read was a full snapshot
//! or a delta, whether it was complete, and which checkpoint to store next. Removals are
//! only ever derived from a complete read.

pub mod azure;
pub mod batch;
pub mod checkpoint;
pub mod file;
pub mod google;
pub mod http;
pub mod keycloak;
pub mod kind;
pub mod ldap;
pub mod okta;
pub mod probe;
pub(crate) mod records;

use async_trait::async_trait;

use crate::model::{MemberKind, MemberRef, SourceGroup, SourceUser};

/// One page worth of source data.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceBatch {
    /// Users, created or changed (full reads: every user of the source).
    Users(Vec<SourceUser>),
    /// Groups with their complete direct member lists.
    Groups(Vec<SourceGroup>),
    /// Delta reads only: records that no longer exist in the source.
    Removed {
        users: Vec<String>,
        groups: Vec<String>,
    },
    /// Delta reads only: the id of every record of `kind` the source holds now (the whole
    /// set, possibly over several batches). After a complete read, the mirror removes the
    /// records of that kind it holds that no such batch listed: a delta connector whose
    /// change feed cannot show hard deletions (Okta) still sees them at every run.
    Present { kind: MemberKind, ids: Vec<String> },
    /// Delta reads only: membership changes of a group the mirror already holds
    /// (Graph's `members@delta`).
    MemberChanges {
        group: String,
        added: Vec<MemberRef>,
        removed: Vec<MemberRef>,
    },
}

impl SourceBatch {
    /// How many records (users, groups, removals or member changes) the batch carries.
    pub fn len(&self) -> usize {
        match self {
            SourceBatch::Users(users) => users.len(),
            SourceBatch::Groups(groups) => groups.len(),
            SourceBatch::Removed { users, groups } => users.len() + groups.len(),
            SourceBatch::Present { ids, .. } => ids.len(),
            SourceBatch::MemberChanges { added, removed, .. } => added.len() + removed.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether a read enumerated the whole source or only what changed since the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Everything in the source was sent: what was not sent is gone.
    Full,
    /// Only changes since the stored checkpoint were sent.
    Delta,
}

impl ReadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Full => "full",
            ReadMode::Delta => "delta",
        }
    }
}

/// What a connector reports at the end of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSummary {
    pub mode: ReadMode,
    /// True only when every page of users, groups and members was read. A run refuses an
    /// incomplete read whole (nothing changes), since removals need a complete one.
    pub complete: bool,
    /// The cursor to resume from next time (a Graph delta link, an Okta timestamp...).
    /// `None` keeps no checkpoint: the next read is a full one.
    pub next_checkpoint: Option<String>,
}

impl ReadSummary {
    /// A read that got every page, in `mode`, resuming next time from `next_checkpoint`.
    pub fn complete(mode: ReadMode, next_checkpoint: Option<String>) -> ReadSummary {
        ReadSummary {
            mode,
            complete: true,
            next_checkpoint,
        }
    }
}

/// Receives batches as the connector reads them.
#[async_trait]
pub trait BatchSink: Send {
    async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError>;

    /// Says, before the first batch, that this read may send a record more than once even
    /// when it is a full read (Graph's initial delta round may: the last occurrence wins,
    /// and a removal sent after a record removes it, as in any delta). Without it an id
    /// sent twice fails a full read. A sink that forwards batches forwards this too.
    fn allow_repeats(&mut self) {}
}

/// The sink refused a batch (for example a duplicate external id in one snapshot).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A source that can be read on a schedule.
#[async_trait]
pub trait PullConnector: Send + Sync {
    /// The connector kind, as written in its config (`file`, `azure`, ...).
    fn kind(&self) -> &'static str;

    /// Reads the source from `checkpoint` (the last complete run's `next_checkpoint`),
    /// pushing batches into `sink`.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError>;

    /// Checks, cheaply, that the source is reachable, the credentials work and every read
    /// a run needs is permitted (`idsync check --connect`). Stops at the first failure.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        vec![Diagnosis::ok("connect", "nothing to check for this kind")]
    }
}

/// One step of `idsync check --connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub check: &'static str,
    pub ok: bool,
    /// What was seen; for a failure, what to fix.
    pub detail: String,
}

impl Diagnosis {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Diagnosis {
        Diagnosis {
            check,
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn failed(check: &'static str, detail: impl Into<String>) -> Diagnosis {
        Diagnosis {
            check,
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Why a read failed. Each variant says what the operator should look at.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Malformed {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{0}")]
    Sink(#[from] SinkError),
    #[error(
        "connector `{0}` is a SCIM tenant: identity providers push to it (`idsync serve`); \
         it cannot be pulled. `idsync reconcile {0}` re-applies its mirror"
    )]
    NotPullable(String),
    /// An API call failed; nothing of the read is kept.
    #[error("{kind} connector: {what} failed: {source}")]
    Http {
        /// The connector kind (`keycloak`, ...).
        kind: &'static str,
        /// What the connector was doing.
        what: String,
        #[source]
        source: http::HttpError,
    },
    /// A directory (LDAP) operation failed; nothing of the read is kept.
    #[error("ldap connector: {what} failed: {source}")]
    Ldap {
        /// What the connector was doing.
        what: String,
        #[source]
        source: ldap::LdapReadError,
    },
}

impl ConnectorError {
    /// How a connector of `kind` reports an HTTP client or token source it could not set
    /// up (a refused URL, a key that cannot sign).
    pub(crate) fn setting_up(kind: &'static str) -> impl Fn(http::HttpError) -> ConnectorError {
        move |source| ConnectorError::Http {
            kind,
            what: "setting up the HTTP client".to_string(),
            source,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A sink that collects batches, for connector unit tests.
    use super::*;

    #[derive(Default)]
    pub struct CollectingSink {
        pub batches: Vec<SourceBatch>,
    }

    impl CollectingSink {
        pub fn users(&self) -> Vec<SourceUser> {
            self.records(|batch| match batch {
                SourceBatch::Users(users) => Some(users),
                _ => None,
            })
        }

        pub fn groups(&self) -> Vec<SourceGroup> {
            self.records(|batch| match batch {
                SourceBatch::Groups(groups) => Some(groups),
                _ => None,
            })
        }

        /// The records of every batch `pick` takes, in order.
        fn records<T: Clone>(&self, pick: impl Fn(&SourceBatch) -> Option<&Vec<T>>) -> Vec<T> {
            self.batches
                .iter()
                .filter_map(pick)
                .flatten()
                .cloned()
                .collect()
        }
    }

    #[async_trait]
    impl BatchSink for CollectingSink {
        async fn accept(&mut self, batch: SourceBatch) -> Result<(), SinkError> {
            self.batches.push(batch);
            Ok(())
        }
    }
}
