//! The LDAP target's conversation with its server: connect and bind (the connector's
//! transport code, so TLS, CA files and the insecure options behave the same), read what
//! is under the containers idsync writes (a paged one-level search each), and send the
//! writes, several in flight at once, step by step.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, stream};
use ldap3::{Ldap, LdapError, Mod};

use super::entry::{AttrChange, Entry, Found, Write, Writes, normalized};
use super::settings::{Deactivate, LdapTargetSettings};
use crate::connectors::ldap::LdapReadError;
use crate::connectors::ldap::client::{self, Session};
use crate::connectors::ldap::directory::{Directory as _, Scope, SearchRequest};

/// Entries per page of the reads (at most the bind account's limit for paged searches).
const PAGE_SIZE: u32 = 1000;

/// LDAP result code noSuchObject (RFC 4511 appendix A).
const NO_SUCH_OBJECT: u32 = 32;

/// Why the LDAP target could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LdapWriteError {
    #[error("LDAP target {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: LdapReadError,
    },
    #[error(
        "LDAP target: the container `{dn}` does not exist or cannot be read: {source}; create \
         it and let the bind account read and write below it"
    )]
    Container {
        dn: String,
        #[source]
        source: LdapReadError,
    },
    #[error("LDAP target: reading `{dn}`: {source}")]
    Read {
        dn: String,
        #[source]
        source: LdapReadError,
    },
    #[error(
        "LDAP target: {applied} of {planned} writes were applied, then {operation} `{dn}` \
         failed: {message}; LDAP has no transactions, so the entries written stay and the \
         next run completes the rest"
    )]
    Write {
        applied: usize,
        planned: usize,
        operation: &'static str,
        dn: String,
        message: String,
    },
}

/// A bound connection to the target's server.
pub struct Target {
    ldap: Ldap,
    settings: LdapTargetSettings,
}

impl Target {
    /// Connects and binds as the configured account.
    pub async fn open(settings: &LdapTargetSettings) -> Result<Target, LdapWriteError> {
        let connect_error = |source| LdapWriteError::Connect {
            url: settings.transport.url.clone(),
            source,
        };
        let mut ldap = client::connect(&settings.transport, settings.timeout)
            .await
            .map_err(connect_error)?;
        client::simple_bind(
            &mut ldap,
            settings.timeout,
            &settings.bind_dn,
            &settings.bind_password,
        )
        .await
        .map_err(connect_error)?;
        Ok(Target {
            ldap,
            settings: settings.clone(),
        })
    }

    /// Unbinds (best effort).
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    /// Every entry directly under the containers idsync writes, by normalised DN, with
    /// the attributes `managed` names (and whether idsync created it).
    pub async fn read(&self, managed: &[String]) -> Result<HashMap<String, Found>, LdapWriteError> {
        let mut containers = vec![&self.settings.users_dn, &self.settings.groups_dn];
        if let Deactivate::Move { container } = &self.settings.deactivate {
            containers.push(container);
        }
        let me = normalized(&self.settings.bind_dn);
        let mut attrs = managed.to_vec();
        attrs.push("creatorsName".to_owned());
        let mut found = HashMap::new();
        let mut seen = HashSet::new();
        for container in containers {
            if !seen.insert(normalized(container)) {
                continue;
            }
            let mut session = Session::over(self.ldap.clone(), self.settings.timeout);
            let base = SearchRequest {
                base: container.clone(),
                scope: Scope::Base,
                filter: "(objectClass=*)".to_owned(),
                attrs: vec!["1.1".to_owned()],
            };
            session
                .page(&base, None)
                .await
                .map_err(|source| LdapWriteError::Container {
                    dn: container.clone(),
                    source,
                })?;
            let request = SearchRequest {
                scope: Scope::One,
                attrs: attrs.clone(),
                ..base
            };
            let mut cookie = Vec::new();
            loop {
                let page = session
                    .page(&request, Some((PAGE_SIZE, cookie)))
                    .await
                    .map_err(|source| LdapWriteError::Read {
                        dn: container.clone(),
                        source,
                    })?;
                for entry in page.entries {
                    let found_entry = found_of(entry, &me);
                    found.insert(normalized(&found_entry.entry.dn), found_entry);
                }
                match page.cookie {
                    Some(next) => cookie = next,
                    None => break,
                }
            }
        }
        Ok(found)
    }

    /// Checks that `container` exists and that one page of its children can be read:
    /// "no entries yet", or "entries below it".
    pub async fn probe(&self, container: &str) -> Result<&'static str, LdapWriteError> {
        let mut session = Session::over(self.ldap.clone(), self.settings.timeout);
        let base = SearchRequest {
            base: container.to_owned(),
            scope: Scope::Base,
            filter: "(objectClass=*)".to_owned(),
            attrs: vec!["1.1".to_owned()],
        };
        let container_error = |source| LdapWriteError::Container {
            dn: container.to_owned(),
            source,
        };
        session.page(&base, None).await.map_err(container_error)?;
        let children = SearchRequest {
            scope: Scope::One,
            ..base
        };
        let page = session
            .page(&children, Some((1, Vec::new())))
            .await
            .map_err(|source| LdapWriteError::Read {
                dn: container.to_owned(),
                source,
            })?;
        Ok(match page.entries.is_empty() {
            true => "no entries yet",
            false => "entries below it",
        })
    }

    /// The entries at these DNs (those that exist), by normalised DN, as [`Target::read`]
    /// reads them: what a plan over changed users needs, one base search per DN.
    pub async fn read_dns(
        &self,
        dns: &[String],
        managed: &[String],
    ) -> Result<HashMap<String, Found>, LdapWriteError> {
        let me = normalized(&self.settings.bind_dn);
        let mut attrs = managed.to_vec();
        attrs.push("creatorsName".to_owned());
        let timeout = self.settings.timeout;
        let mut answers = stream::iter(dns.iter().cloned())
            .map(|dn| {
                let mut session = Session::over(self.ldap.clone(), timeout);
                let request = SearchRequest {
                    base: dn.clone(),
                    scope: Scope::Base,
                    filter: "(objectClass=*)".to_owned(),
                    attrs: attrs.clone(),
                };
                async move { (dn, session.page(&request, None).await) }
            })
            .buffer_unordered(self.settings.writes_in_flight.max(1));
        let mut found = HashMap::new();
        while let Some((dn, answer)) = answers.next().await {
            match answer {
                Ok(page) => {
                    for entry in page.entries {
                        let entry = found_of(entry, &me);
                        found.insert(normalized(&entry.entry.dn), entry);
                    }
                }
                Err(LdapReadError::Result { rc, .. }) if rc == NO_SUCH_OBJECT => {}
                Err(source) => return Err(LdapWriteError::Read { dn, source }),
            }
        }
        Ok(found)
    }

    /// Sends the writes step by step (renames, users, groups, deletes), up to
    /// `writes_in_flight` at once within a step; the count applied when one fails.
    pub async fn apply(&self, writes: &Writes) -> Result<usize, LdapWriteError> {
        let planned = writes.total();
        let mut applied = 0;
        let (ldap, timeout) = (self.ldap.clone(), self.settings.timeout);
        for step in [
            &writes.renames,
            &writes.users,
            &writes.groups,
            &writes.deletes,
        ] {
            // Each write is sent as an owned copy, so the answers' futures borrow nothing.
            let mut answers = stream::iter(step.iter().cloned())
                .map(|write| send(ldap.clone(), timeout, write))
                .buffer_unordered(self.settings.writes_in_flight.max(1));
            while let Some(answer) = answers.next().await {
                match answer {
                    Ok(()) => applied += 1,
                    Err((write, message)) => {
                        return Err(LdapWriteError::Write {
                            applied,
                            planned,
                            operation: operation(&write),
                            dn: write.dn().to_owned(),
                            message,
                        });
                    }
                }
            }
        }
        Ok(applied)
    }
}

/// An entry as read, with whether `me` (the bind DN, normalised) created it.
fn found_of(mut entry: crate::connectors::ldap::directory::Entry, me: &str) -> Found {
    let creator = entry
        .text
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("creatorsName"))
        .map(|(k, _)| k.clone());
    let ours = creator
        .and_then(|k| entry.text.remove(&k))
        .and_then(|values| values.into_iter().next())
        .is_some_and(|creator| normalized(&creator) == me);
    Found {
        entry: Entry {
            dn: entry.dn,
            attrs: entry.text.into_iter().collect(),
        },
        ours,
    }
}

/// What a write is called in messages.
fn operation(write: &Write) -> &'static str {
    match write {
        Write::Rename { .. } => "renaming",
        Write::Add(_) => "adding",
        Write::Modify { .. } => "modifying",
        Write::Delete { .. } => "deleting",
    }
}

/// One write; the server's refusal as text.
async fn send(
    mut ldap: Ldap,
    timeout: std::time::Duration,
    write: Write,
) -> Result<(), (Write, String)> {
    let ldap = ldap.with_timeout(timeout);
    let result = match &write {
        Write::Rename { dn, rdn, superior } => {
            ldap.modifydn(dn, rdn, true, superior.as_deref()).await
        }
        Write::Add(entry) => {
            let attrs = entry
                .attrs
                .iter()
                .filter(|(_, values)| !values.is_empty())
                .map(|(name, values)| (name.as_str(), values.iter().map(String::as_str).collect()))
                .collect();
            ldap.add(&entry.dn, attrs).await
        }
        Write::Modify { dn, changes } => {
            ldap.modify(dn, changes.iter().map(as_mod).collect()).await
        }
        Write::Delete { dn } => ldap.delete(dn).await,
    };
    match result {
        Ok(answer) if answer.rc == 0 => Ok(()),
        // Deleted already (by a run that failed before its bookkeeping was committed).
        Ok(answer) if answer.rc == NO_SUCH_OBJECT && matches!(write, Write::Delete { .. }) => {
            Ok(())
        }
        Ok(answer) => Err((write, result_text(answer.rc, &answer.text))),
        Err(err) => Err((write, transport_text(err))),
    }
}

fn as_mod(change: &AttrChange) -> Mod<&str> {
    fn set(values: &[String]) -> HashSet<&str> {
        values.iter().map(String::as_str).collect()
    }
    match change {
        AttrChange::Replace(name, values) => Mod::Replace(name.as_str(), set(values)),
        AttrChange::Add(name, values) => Mod::Add(name.as_str(), set(values)),
        AttrChange::Delete(name, values) => Mod::Delete(name.as_str(), set(values)),
    }
}

/// A refused write's result code and the server's text.
fn result_text(rc: u32, text: &str) -> String {
    let name = match rc {
        16 => " (noSuchAttribute)",
        17 => " (undefinedAttributeType)",
        19 => " (constraintViolation)",
        20 => " (attributeOrValueExists)",
        21 => " (invalidAttributeSyntax)",
        32 => " (noSuchObject)",
        34 => " (invalidDNSyntax)",
        50 => " (insufficientAccessRights: let the bind account write there)",
        53 => " (unwillingToPerform)",
        64 => " (namingViolation)",
        65 => " (objectClassViolation)",
        68 => " (entryAlreadyExists)",
        _ => "",
    };
    match text.trim() {
        "" => format!("result code {rc}{name}"),
        text => format!("result code {rc}{name}; server says: {text}"),
    }
}

fn transport_text(err: LdapError) -> String {
    format!("the connection failed: {err}")
}
