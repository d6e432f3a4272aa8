//! Incremental reads by RFC 4533 content synchronisation (OpenLDAP's syncprov overlay):
//! one refreshOnly poll per search (users, groups) from the cookie the last read stored.
//! Only changed entries come back, deletions as entryUUIDs (delete phase), or, when the
//! server keeps no session log, the entryUUIDs of every unchanged entry (present phase),
//! which then tell what still exists as the listing of the change-filter method does.
//!
//! * The cookies for the first incremental read are taken just before a full read, by
//!   polls for the initial content of a filter that matches nothing: syncprov's cookie
//!   is a state (the change sequence number it stood at), not a copy of the content, so
//!   it serves the real filter's polls. Changes made while the full read runs are read
//!   again next time. (RFC 4533 section 3.5 asks for the same search each poll; this
//!   holds for syncprov, whose cookies do not depend on it, hence OpenLDAP only.)
//! * Polls are not paged: slapd 2.5 answers a sync search that also carries the paged
//!   results control with its first page and a Sync Done control, as if complete. So
//!   the bind account's size limit bounds a change set; a larger one fails the poll
//!   (sizeLimitExceeded) and the read is full.
//! * Both polls finish before anything reaches the sink, so a cookie the server no
//!   longer takes (e-syncRefreshRequired, section 3.8; slapd's "consumer state is newer
//!   than provider") turns into a full read within the same run.

use std::collections::{HashMap, HashSet};

use super::changes::Cookies;
use super::content_sync::{
    REFRESH_REQUIRED, Refresh, SYNC_REQUEST_OID, decode_cookie, encode_cookie,
};
use super::directory::{Directory, Entry, LdapReadError, Scope, SearchRequest, read_entry};
use super::dn;
use super::presets::Preset;
use super::reader::{Index, Reader, failed, note_outside, note_references};
use super::records::{self, member_dn};
use super::settings::{LdapSettings, SearchBase};
use crate::connectors::batch::Batcher;
use crate::connectors::{BatchSink, ConnectorError, SourceBatch};
use crate::model::MemberKind;

/// Above this many member DNs and logins to resolve (members of changed groups that
/// are not themselves among the changes), one listing of every user's and group's DN
/// and id is used instead of a search each. A lookup cost about 0.15 ms against a local
/// slapd (1,500 in 235 ms, 16 in flight), a listing about 15 us an entry: 1,000
/// lookups cost what listing some 10,000 entries does, and stay well under a listing
/// of the large directories incremental reads are for.
const LOOKUP_LIMIT: usize = 1_000;

/// What the polls of an incremental read found.
#[derive(Debug)]
pub(super) struct Polls {
    pub users: Refresh,
    pub groups: Option<Refresh>,
}

/// The outcome of polling from the stored cookies.
#[derive(Debug)]
pub(super) enum Polled {
    Changes(Polls),
    /// The server cannot continue from the cookies (why): the read must be full.
    Reload(LdapReadError),
}

/// Whether a failed poll means "read everything again" rather than a failed read: the
/// server refuses the cookie (e-syncRefreshRequired; unwillingToPerform for a cookie
/// ahead of the server, as slapd answers after a restore), the change set is above the
/// account's limits (a full read pages, a poll cannot), or the server no longer
/// synchronises that database (unavailableCriticalExtension).
fn reload_needed(err: &LdapReadError) -> bool {
    matches!(err, LdapReadError::Result { rc, .. }
        if matches!(*rc, REFRESH_REQUIRED | 53 | 3 | 4 | 11 | 12))
}

fn request(base: &SearchBase, filter: String, attrs: Vec<String>) -> SearchRequest {
    SearchRequest {
        base: base.base_dn.clone(),
        scope: base.scope,
        filter,
        attrs,
    }
}

/// Polls the users' and the groups' searches from `cookies`.
pub(super) async fn poll(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
    cookies: &Cookies,
) -> Result<Polled, ConnectorError> {
    let users = &settings.users;
    let attrs = settings.profile.user_attributes();
    let what = format!("polling changes of users under {}", users.base_dn);
    let Some(cookie) = decode_cookie(&cookies.users) else {
        return Ok(Polled::Reload(LdapReadError::Protocol(
            "the stored cookie cannot be read".to_owned(),
        )));
    };
    let polled = directory
        .refresh(&request(users, users.filter.clone(), attrs), Some(cookie))
        .await;
    let users = match polled {
        Ok(refresh) => refresh,
        Err(err) if reload_needed(&err) => return Ok(Polled::Reload(err)),
        Err(err) => return Err(failed(what)(err)),
    };
    note_references(users.references, &what);
    let Some(groups) = &settings.groups else {
        return Ok(Polled::Changes(Polls {
            users,
            groups: None,
        }));
    };
    let what = format!("polling changes of groups under {}", groups.base_dn);
    let Some(cookie) = cookies.groups.as_deref().and_then(decode_cookie) else {
        return Ok(Polled::Reload(LdapReadError::Protocol(
            "the stored checkpoint has no cookie for the groups".to_owned(),
        )));
    };
    let attrs = settings.profile.group_attributes();
    let polled = directory
        .refresh(&request(groups, groups.filter.clone(), attrs), Some(cookie))
        .await;
    match polled {
        Ok(refresh) => {
            note_references(refresh.references, &what);
            Ok(Polled::Changes(Polls {
                users,
                groups: Some(refresh),
            }))
        }
        Err(err) if reload_needed(&err) => Ok(Polled::Reload(err)),
        Err(err) => Err(failed(what)(err)),
    }
}

/// Whether incremental reads can use content synchronisation: the OpenLDAP preset
/// with entryUUID as the id (deletions come as entryUUIDs), and the Sync Request
/// control in the root DSE's `supportedControl`.
pub(super) async fn offered(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
) -> Result<bool, LdapReadError> {
    let profile = &settings.profile;
    if profile.preset != Preset::OpenLdap || !profile.id.eq_ignore_ascii_case("entryUUID") {
        return Ok(false);
    }
    let root = read_entry(directory, "", &["supportedControl"]).await?;
    Ok(root.is_some_and(|root| {
        root.values("supportedControl")
            .iter()
            .any(|oid| oid == SYNC_REQUEST_OID)
    }))
}

/// Cookies for the next read, taken before a full read by polling for the initial
/// content of each search's filter narrowed to nothing (`(!(objectClass=*))`), so that
/// no entry is sent. `None` when the server refuses (then incremental reads use change
/// filters, `changes.rs`).
pub(super) async fn initial_cookies(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
) -> Result<Option<Cookies>, ConnectorError> {
    let mut taken = Vec::new();
    let bases = std::iter::once(&settings.users).chain(settings.groups.as_ref());
    for base in bases {
        let filter = format!("(&{}(!(objectClass=*)))", base.filter);
        let polled = directory
            .refresh(&request(base, filter, vec!["1.1".to_owned()]), None)
            .await;
        let cookie = match polled {
            Ok(refresh) => refresh.cookie,
            Err(err @ LdapReadError::Result { .. }) => {
                tracing::info!(
                    kind = super::KIND,
                    base = %base.base_dn,
                    "incremental: content synchronisation refused ({err}); incremental \
                     reads use entryCSN filters"
                );
                None
            }
            Err(err) => return Err(failed(format!("polling under {}", base.base_dn))(err)),
        };
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        taken.push(encode_cookie(&cookie));
    }
    let mut taken = taken.into_iter();
    Ok(taken.next().map(|users| Cookies {
        users,
        groups: taken.next(),
    }))
}

/// The cookies after `polls`: each poll's new one, or the old one where the server sent
/// none (nothing changed).
pub(super) fn next_cookies(old: &Cookies, polls: &Polls) -> Cookies {
    let next = |refresh: &Refresh, old: &str| {
        refresh
            .cookie
            .as_deref()
            .map_or_else(|| old.to_owned(), encode_cookie)
    };
    Cookies {
        users: next(&polls.users, &old.users),
        groups: match (&polls.groups, &old.groups) {
            (Some(refresh), Some(old)) => Some(next(refresh, old)),
            _ => old.groups.clone(),
        },
    }
}

impl Reader<'_> {
    /// Sends what the polls found into `sink`: the changed users and groups (members of
    /// changed groups resolved, [`Reader::resolve`]), the removals, and with a present
    /// phase the ids still present.
    pub(super) async fn apply(
        &mut self,
        polls: Polls,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let Polls { users, groups } = polls;
        let mut index = Index::default();
        let (user_ids, mut removed_users) =
            self.changed_users(users.changed, &mut index, sink).await?;
        let mut group_ids = HashSet::new();
        let mut removed_groups = Vec::new();
        if let Some(groups) = groups {
            let entries = self.changed_groups(groups.changed, &mut index);
            group_ids = entries.iter().map(|(id, _)| id.clone()).collect();
            self.resolve(&entries, &mut index).await?;
            let mut batch = Batcher::groups();
            let mut outside = 0usize;
            for (id, entry) in entries {
                let members = self.members(&entry, &index, &mut outside).await?;
                let group = records::to_group(id, entry, self.profile(), members);
                batch.push(group, sink).await?;
            }
            batch.finish(sink).await?;
            note_outside(outside);
            removed_groups.extend(groups.deleted);
            if let Some(present) = groups.present {
                let ids = present
                    .into_iter()
                    .chain(group_ids.iter().cloned())
                    .collect();
                let kind = MemberKind::Group;
                sink.accept(SourceBatch::Present { kind, ids }).await?;
            }
        }
        removed_users.extend(users.deleted);
        if let Some(present) = users.present {
            let ids = present
                .into_iter()
                .chain(user_ids.iter().cloned())
                .collect();
            let kind = MemberKind::User;
            sink.accept(SourceBatch::Present { kind, ids }).await?;
        }
        // With a session log syncprov names every entry changed outside a poll's
        // content as gone from it (a group changed, seen from the users' poll): what
        // the other poll read is not removed.
        removed_users.retain(|id| !user_ids.contains(id) && !group_ids.contains(id));
        removed_groups.retain(|id| !group_ids.contains(id) && !user_ids.contains(id));
        if !removed_users.is_empty() || !removed_groups.is_empty() {
            sink.accept(SourceBatch::Removed {
                users: removed_users,
                groups: removed_groups,
            })
            .await?;
        }
        Ok(())
    }

    /// Maps the changed user entries into `sink`, noting their DNs and logins in
    /// `index`; the ids sent, and the ids of changed entries that no longer map (no
    /// user name: a full read would leave them out, so they are removed).
    async fn changed_users(
        &mut self,
        entries: Vec<Entry>,
        index: &mut Index,
        sink: &mut dyn BatchSink,
    ) -> Result<(HashSet<String>, Vec<String>), ConnectorError> {
        let inactive = if entries.is_empty() {
            HashSet::new()
        } else {
            self.inactive_dns().await?
        };
        let mut batch = Batcher::users();
        let mut ids = HashSet::new();
        let mut unmapped = Vec::new();
        for entry in entries {
            let id = records::external_id(&entry, self.profile());
            let key = dn::normalize(&entry.dn);
            let matched = key.as_ref().is_some_and(|k| inactive.contains(k));
            match (key, records::to_user(entry, self.profile(), matched)) {
                (Some(key), Some(user)) => {
                    if !ids.insert(user.external_id.clone()) {
                        continue;
                    }
                    index.add_user(key, &user);
                    batch.push(user, sink).await?;
                }
                _ => unmapped.extend(id),
            }
        }
        batch.finish(sink).await?;
        if !unmapped.is_empty() {
            tracing::warn!(
                kind = super::KIND,
                skipped = unmapped.len(),
                "{} changed user entries under {} have no `{}` or `{}`; they are removed",
                unmapped.len(),
                self.settings.users.base_dn,
                self.profile().id,
                self.profile().user_name
            );
        }
        Ok((ids, unmapped))
    }

    /// The changed group entries with their ids (once each), noted in `index`.
    fn changed_groups(&self, entries: Vec<Entry>, index: &mut Index) -> Vec<(String, Entry)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for entry in entries {
            let Some(id) = records::external_id(&entry, self.profile()) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(key) = dn::normalize(&entry.dn) {
                index.groups.insert(key, id.clone());
            }
            out.push((id, entry));
        }
        out
    }

    /// Makes `index` hold every member DN and login of `groups` that names a user or
    /// group a full read would map. A changed group's member list is sent whole, so
    /// its unchanged members need ids too: each is looked up by a base search of its DN
    /// (or a search for its login) against the users' and groups' bases, scopes and
    /// filters. Keeping a DN-to-id map in the checkpoint would cost its size at every
    /// run; the lookups cost one round trip per member of a changed group, and above
    /// [`LOOKUP_LIMIT`] the listing of every DN and id (as the change-filter method
    /// does) is used instead.
    async fn resolve(
        &mut self,
        groups: &[(String, Entry)],
        index: &mut Index,
    ) -> Result<(), ConnectorError> {
        let mut dns: HashMap<String, String> = HashMap::new();
        let mut logins = HashSet::new();
        let profile = self.profile().clone();
        for (_, entry) in groups {
            for attribute in &profile.member {
                for value in entry.values(attribute) {
                    let raw = member_dn(value);
                    if let Some(key) = dn::normalize(raw)
                        && !index.users.contains_key(&key)
                        && !index.groups.contains_key(&key)
                    {
                        dns.entry(key).or_insert_with(|| raw.to_owned());
                    }
                }
            }
            if let Some(attribute) = &profile.member_uid {
                for login in entry.values(attribute) {
                    let login = login.trim().to_lowercase();
                    if !index.logins.contains_key(&login) {
                        logins.insert(login);
                    }
                }
            }
        }
        if dns.len() + logins.len() > LOOKUP_LIMIT {
            self.index_users(index).await?;
            if let Some(groups) = self.settings.groups.clone() {
                self.index_groups(&groups, index).await?;
            }
            return Ok(());
        }
        self.lookup_dns(dns, index).await?;
        self.lookup_logins(logins, index).await
    }

    /// Runs `requests` (several in flight); each one's entries, none where the base
    /// does not exist.
    async fn lookups(
        &mut self,
        requests: Vec<SearchRequest>,
    ) -> Result<Vec<Vec<Entry>>, ConnectorError> {
        let what = "looking up members of changed groups";
        self.directory
            .searches(requests)
            .await
            .into_iter()
            .map(|answer| match answer {
                Ok(page) => Ok(page.entries),
                Err(LdapReadError::Result { rc: 32, .. }) => Ok(Vec::new()),
                Err(err) => Err(failed(what)(err)),
            })
            .collect()
    }

    /// Notes in `index` the member DNs (normalised, with the DN as sent) that name a
    /// user or a group the searches find: a base search of each with the users'
    /// filter where it is within their base and scope, then with the groups' for the
    /// rest (users first, as a full read matches them).
    async fn lookup_dns(
        &mut self,
        dns: HashMap<String, String>,
        index: &mut Index,
    ) -> Result<(), ConnectorError> {
        let profile = self.profile().clone();
        let users = self.settings.users.clone();
        let (in_users, mut rest): (Vec<_>, Vec<_>) =
            dns.into_iter().partition(|(key, _)| in_scope(key, &users));
        let attrs = vec![profile.id.clone(), profile.user_name.clone()];
        let requests = in_users
            .iter()
            .map(|(_, raw)| at(raw, &users.filter, attrs.clone()))
            .collect();
        let answers = self.lookups(requests).await?;
        for ((key, raw), entries) in in_users.into_iter().zip(answers) {
            let found = entries.first().and_then(|entry| {
                let id = records::external_id(entry, &profile)?;
                Some((id, entry.first(&profile.user_name)?.to_lowercase()))
            });
            match found {
                Some((id, login)) => {
                    index.logins.insert(login, id.clone());
                    index.users.insert(key, id);
                }
                None => rest.push((key, raw)),
            }
        }
        let Some(groups) = self.settings.groups.clone() else {
            return Ok(());
        };
        rest.retain(|(key, _)| in_scope(key, &groups));
        let requests = rest
            .iter()
            .map(|(_, raw)| at(raw, &groups.filter, vec![profile.id.clone()]))
            .collect();
        let answers = self.lookups(requests).await?;
        for ((key, _), entries) in rest.into_iter().zip(answers) {
            if let Some(id) = entries
                .first()
                .and_then(|entry| records::external_id(entry, &profile))
            {
                index.groups.insert(key, id);
            }
        }
        Ok(())
    }

    /// Notes in `index` the users whose user names are `logins` (lower-cased).
    async fn lookup_logins(
        &mut self,
        logins: HashSet<String>,
        index: &mut Index,
    ) -> Result<(), ConnectorError> {
        let profile = self.profile().clone();
        let users = self.settings.users.clone();
        let logins: Vec<String> = logins.into_iter().collect();
        let attrs = vec![profile.id.clone(), profile.user_name.clone()];
        let requests = logins
            .iter()
            .map(|login| {
                let filter = format!(
                    "(&{}({}={}))",
                    users.filter,
                    profile.user_name,
                    ldap3::ldap_escape(login.as_str())
                );
                request(&users, filter, attrs.clone())
            })
            .collect();
        let answers = self.lookups(requests).await?;
        for (login, entries) in logins.into_iter().zip(answers) {
            for entry in entries {
                let named = entry
                    .first(&profile.user_name)
                    .is_some_and(|name| name.to_lowercase() == login);
                if let (true, Some(id), Some(key)) = (
                    named,
                    records::external_id(&entry, &profile),
                    dn::normalize(&entry.dn),
                ) {
                    index.logins.insert(login.clone(), id.clone());
                    index.users.insert(key, id);
                }
            }
        }
        Ok(())
    }
}

/// A base search of `dn` with `filter`: the entry if it matches.
fn at(dn: &str, filter: &str, attrs: Vec<String>) -> SearchRequest {
    SearchRequest {
        base: dn.to_owned(),
        scope: Scope::Base,
        filter: filter.to_owned(),
        attrs,
    }
}

/// Whether the normalised DN `key` is within `base`'s DN and scope.
fn in_scope(key: &str, base: &SearchBase) -> bool {
    let Some(base_key) = dn::normalize(&base.base_dn) else {
        return false;
    };
    match base.scope {
        Scope::Base => key == base_key,
        Scope::One => dn::under(key, &base_key, true),
        Scope::Sub => dn::under(key, &base_key, false),
    }
}
