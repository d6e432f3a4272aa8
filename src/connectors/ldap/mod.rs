//! The `ldap` connector: a full read of users and groups from Active Directory, OpenLDAP
//! or 389-ds over LDAP v3 (ldap3 on rustls).
//!
//! * Transport: `ldaps://`, or `ldap://` with StartTLS; a CA file or the system's roots;
//!   a simple bind with the password by reference.
//! * Users and groups: a paged search (RFC 2696) per base DN, scope and filter, at most
//!   `page_size` entries a page; groups in two passes (DNs and ids, then entries) so that
//!   member DNs resolve whatever page their group is on.
//! * Members: DNs (`member`, `uniqueMember`; AD's ranged `member;range=...`) normalised
//!   and resolved against the users and groups read; `memberUid` logins against user
//!   names. Nested groups are group members; the pipeline flattens them.
//! * Any failed operation (a size or time limit, a referral, a dropped connection) fails
//!   the read: nothing is removed.
//!
//! Reads are full, or with `incremental` only the entries changed since the last read:
//! by RFC 4533 content synchronisation where an OpenLDAP server offers it
//! (`sync_reader.rs`, `content_sync.rs`), otherwise by change markers (`changes.rs`),
//! and on OpenLDAP or 389-ds servers without one by `modifyTimestamp` (`timestamps.rs`).

mod changes;
pub(crate) mod client;
mod content_sync;
mod diagnose;
pub(crate) mod directory;
pub mod dn;
pub mod guid;
mod presets;
pub mod range;
mod reader;
mod records;
mod settings;
mod sync_reader;
#[cfg(test)]
mod tests;
mod timestamps;

use async_trait::async_trait;

use super::{BatchSink, ConnectorError, Diagnosis, PullConnector, ReadMode, ReadSummary};
pub use directory::LdapReadError;
pub use settings::{
    LDAP_DEFAULT_PAGE_SIZE, LDAP_DEFAULT_TIMEOUT_SECONDS, LDAP_MAX_PAGE_SIZE, LdapSettings,
    RawLdapSettings,
};
pub use settings::{RawTransport, Transport, check_transport};

const KIND: &str = "ldap";

/// Reads users and groups of one directory.
#[derive(Debug, Clone)]
pub struct LdapConnector {
    settings: LdapSettings,
}

impl LdapConnector {
    pub fn new(settings: &LdapSettings) -> Result<LdapConnector, ConnectorError> {
        Ok(LdapConnector {
            settings: settings.clone(),
        })
    }

    /// The insecure options in use, said on every run.
    fn warn_insecure(&self) {
        let transport = &self.settings.transport;
        if transport.skip_verify {
            tracing::warn!(
                kind = KIND,
                url = %transport.url,
                "danger_skip_tls_verify is set: the server's certificate is NOT checked, \
                 so anyone on the network path can read the bind password and the directory"
            );
        }
        if transport.plain {
            tracing::warn!(
                kind = KIND,
                url = %transport.url,
                "allow_insecure_ldap: the bind password and the directory travel unencrypted"
            );
        }
    }
}

#[async_trait]
impl PullConnector for LdapConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Bind, base DNs, paging support, server limits, the preset's operational attributes.
    async fn diagnose(&self) -> Vec<Diagnosis> {
        self.warn_insecure();
        diagnose::run(&self.settings).await
    }

    /// A full read, or with `incremental` (and a change marker on the server) the changes
    /// since the checkpoint's marker, until `full_read_every` has passed.
    async fn read(
        &self,
        checkpoint: Option<&str>,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        self.warn_insecure();
        let mut session = client::Session::open(&self.settings)
            .await
            .map_err(reader::failed(format!(
                "binding to {}",
                self.settings.transport.url
            )))?;
        let marker = if self.settings.incremental {
            changes::read_marker(&mut session, &self.settings)
                .await
                .map_err(reader::failed("reading the server's change marker"))?
        } else {
            None
        };
        let now = crate::clock::system_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.settings.incremental && marker.is_none() {
            // Without a marker there is no content sync either (it needs contextCSN).
            match changes::method(self.settings.profile.preset, false, false) {
                changes::Method::Timestamps => {
                    tracing::info!(
                        kind = KIND,
                        "incremental: the server shows no contextCSN (no syncprov overlay): \
                         incremental reads use modifyTimestamp filters"
                    );
                    let read = self
                        .read_by_timestamps(&mut session, checkpoint, now, sink)
                        .await;
                    session.close().await;
                    return read;
                }
                _ => tracing::warn!(
                    kind = KIND,
                    "incremental: the server shows no change marker (OpenLDAP needs the \
                     syncprov overlay for contextCSN; AD's root DSE highestCommittedUSN): \
                     every read is full"
                ),
            }
        }
        let synced = match &marker {
            Some(marker) => {
                self.read_synced(&mut session, checkpoint, marker, now)
                    .await
            }
            None => Ok(Synced::default()),
        };
        let synced = match synced {
            Ok(synced) => synced,
            Err(err) => {
                session.close().await;
                return Err(err);
            }
        };
        if let Some(polls) = synced.polls {
            let mut reader = reader::Reader {
                directory: &mut session,
                settings: &self.settings,
                page_size: self.settings.page_size,
                changed_since: None,
                stamps: None,
            };
            let read = reader.apply(polls, sink).await;
            session.close().await;
            read?;
            return Ok(ReadSummary {
                mode: ReadMode::Delta,
                complete: true,
                next_checkpoint: marker.zip(synced.cookies).map(|(m, cookies)| {
                    changes::checkpoint_with_cookies(&m, &self.settings, synced.full_at, &cookies)
                }),
            });
        }
        let (changed_since, full_at) = match &marker {
            Some(_) if synced.reload => (None, now),
            Some(marker) => changes::plan(checkpoint, marker, &self.settings, now),
            None => (None, now),
        };
        let mode = match changed_since {
            Some(_) => ReadMode::Delta,
            None => ReadMode::Full,
        };
        let mut reader = reader::Reader {
            directory: &mut session,
            settings: &self.settings,
            page_size: self.settings.page_size,
            changed_since,
            stamps: None,
        };
        let read = reader.read(sink).await;
        session.close().await;
        read?;
        Ok(ReadSummary {
            mode,
            complete: true,
            next_checkpoint: marker.map(|m| match &synced.cookies {
                Some(cookies) => {
                    changes::checkpoint_with_cookies(&m, &self.settings, full_at, cookies)
                }
                None => changes::checkpoint(&m, &self.settings, full_at),
            }),
        })
    }
}

/// Where content synchronisation left an incremental read.
#[derive(Default)]
struct Synced {
    /// The changes polled from the stored cookies: this read is a delta of them.
    polls: Option<sync_reader::Polls>,
    /// The cookies to store after this read.
    cookies: Option<changes::Cookies>,
    /// When the last full read started, for a delta of `polls`.
    full_at: u64,
    /// The server refused the stored cookies: this read is full.
    reload: bool,
}

impl LdapConnector {
    /// An incremental read by `modifyTimestamp` (`timestamps.rs`), for servers that show
    /// no change marker; the checkpoint names the database suffix holding the users.
    async fn read_by_timestamps(
        &self,
        session: &mut client::Session,
        checkpoint: Option<&str>,
        now: u64,
        sink: &mut dyn BatchSink,
    ) -> Result<ReadSummary, ConnectorError> {
        let suffix = changes::suffix(session, &self.settings)
            .await
            .map_err(reader::failed("reading the server's root DSE"))?;
        let server = suffix.unwrap_or_else(|| self.settings.users.base_dn.clone());
        let mut reader = reader::Reader {
            directory: session,
            settings: &self.settings,
            page_size: self.settings.page_size,
            changed_since: None,
            stamps: None,
        };
        reader
            .read_by_timestamps(checkpoint, &server, now, sink)
            .await
    }

    /// Content synchronisation where the server offers it (`sync_reader.rs`): the
    /// changes since the stored cookies, or, for a read by other means (full, or with
    /// change filters from an older checkpoint), cookies taken before it for the next.
    async fn read_synced(
        &self,
        session: &mut client::Session,
        checkpoint: Option<&str>,
        marker: &changes::Marker,
        now: u64,
    ) -> Result<Synced, ConnectorError> {
        let offered = sync_reader::offered(session, &self.settings)
            .await
            .map_err(reader::failed("reading the server's root DSE"))?;
        if !offered {
            return Ok(Synced::default());
        }
        let mut synced = Synced::default();
        let (stored, full_at) = changes::plan_sync(checkpoint, marker, &self.settings, now);
        if let Some(stored) = stored {
            match sync_reader::poll(session, &self.settings, &stored).await? {
                sync_reader::Polled::Changes(polls) => {
                    return Ok(Synced {
                        cookies: Some(sync_reader::next_cookies(&stored, &polls)),
                        polls: Some(polls),
                        full_at,
                        reload: false,
                    });
                }
                sync_reader::Polled::Reload(why) => {
                    tracing::info!(
                        kind = KIND,
                        "incremental: the server no longer accepts the stored content sync \
                         cookie ({why}): this read is full"
                    );
                    synced.reload = true;
                }
            }
        }
        synced.cookies = sync_reader::initial_cookies(session, &self.settings).await?;
        Ok(synced)
    }
}
