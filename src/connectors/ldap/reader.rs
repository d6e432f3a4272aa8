//! A full read over any [`Directory`]: users by paged search, then groups in two paged
//! passes (their DNs and ids first, so that a member DN naming a group on a later page is
//! known), each group's member DNs collected through ranged retrieval and resolved against
//! what was read. Records reach the sink through [`Batcher`]s as pages arrive.

use std::collections::{HashMap, HashSet};

use super::directory::{Directory, Entry, LdapReadError, Scope, SearchRequest};
use super::dn;
use super::presets::{Inactive, Profile};
use super::range::{self, RangeEnd};
use super::records::{self, member_dn};
use super::settings::{LdapSettings, SearchBase};
use super::timestamps::{self, Highest};
use crate::connectors::batch::Batcher;
use crate::connectors::{BatchSink, ConnectorError, SourceBatch};
use crate::model::{MemberKind, MemberRef};

/// A failed step of a read: what was being done, and why it failed.
pub(super) fn failed(what: impl Into<String>) -> impl FnOnce(LdapReadError) -> ConnectorError {
    let what = what.into();
    move |source| ConnectorError::Ldap { what, source }
}

/// A paged search, one page at a time.
pub(super) struct Paged {
    request: SearchRequest,
    size: u32,
    cookie: Option<Vec<u8>>,
    /// Continuation references seen (not followed).
    pub references: usize,
}

impl Paged {
    pub fn new(request: SearchRequest, size: u32) -> Paged {
        Paged {
            request,
            size,
            cookie: Some(Vec::new()),
            references: 0,
        }
    }

    /// The page size in use (smaller than asked when the server refused that).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The next page's entries; `None` after the last page. When the server refuses
    /// the first page's size (OpenLDAP answers adminLimitExceeded, "illegal pagedResults
    /// page size", to pages above its `size.pr` limit), the search starts again with
    /// half the size: nothing was read yet, so nothing is lost or read twice.
    pub async fn next(
        &mut self,
        directory: &mut dyn Directory,
    ) -> Result<Option<Vec<Entry>>, LdapReadError> {
        let Some(cookie) = self.cookie.take() else {
            return Ok(None);
        };
        let first = cookie.is_empty();
        loop {
            match directory
                .page(&self.request, Some((self.size, cookie.clone())))
                .await
            {
                Err(LdapReadError::Result { rc: 11, .. }) if first && self.size > 1 => {
                    let smaller = self.size / 2;
                    tracing::info!(
                        kind = super::KIND,
                        "the server refused pages of {} entries; asking for {smaller} \
                         (set `page_size` to at most the server's limit)",
                        self.size
                    );
                    self.size = smaller;
                }
                Err(err) => return Err(err),
                Ok(page) => {
                    self.references += page.references;
                    self.cookie = page.cookie.filter(|c| !c.is_empty());
                    return Ok(Some(page.entries));
                }
            }
        }
    }
}

/// What was read so far, to resolve member DNs and logins.
#[derive(Default)]
pub(super) struct Index {
    /// Normalised DN of each user read, with its id.
    pub users: HashMap<String, String>,
    /// Lower-cased user name of each user read, with its id (`memberUid`).
    pub logins: HashMap<String, String>,
    /// Normalised DN of each group read, with its id.
    pub groups: HashMap<String, String>,
}

impl Index {
    /// Records a user read at normalised DN `key`: by DN and by login.
    pub fn add_user(&mut self, key: String, user: &crate::model::SourceUser) {
        self.users.insert(key, user.external_id.clone());
        self.logins
            .insert(user.user_name.to_lowercase(), user.external_id.clone());
    }
}

/// Reads a directory through one session.
pub(super) struct Reader<'a> {
    pub directory: &'a mut dyn Directory,
    pub settings: &'a LdapSettings,
    /// The page size: `page_size`, or less once the server refused that.
    pub page_size: u32,
    /// An incremental read: the filter clause of entries changed since the last read.
    pub changed_since: Option<String>,
    /// Reads by `modifyTimestamp` (`timestamps.rs`): the highest timestamp on the users
    /// and groups read so far; their searches then ask for the timestamps by name.
    pub stamps: Option<Highest>,
}

impl Reader<'_> {
    pub(super) fn profile(&self) -> &Profile {
        &self.settings.profile
    }

    /// A paged search of `base` (its DN and scope) with `filter`, in pages of the size
    /// that works so far.
    fn paged(&self, base: &SearchBase, filter: String, attrs: Vec<String>) -> Paged {
        let request = SearchRequest {
            base: base.base_dn.clone(),
            scope: base.scope,
            filter,
            attrs,
        };
        Paged::new(request, self.page_size)
    }

    /// Users, then groups, into `sink`.
    /// Incremental reads first list every user's DN, id and user name (to resolve
    /// members and to report who is present), then read only the changed entries.
    pub async fn read(&mut self, sink: &mut dyn BatchSink) -> Result<(), ConnectorError> {
        let mut index = Index::default();
        let delta = self.changed_since.is_some();
        if delta {
            self.index_users(&mut index).await?;
            let ids = index.users.values().cloned().collect();
            sink.accept(SourceBatch::Present {
                kind: MemberKind::User,
                ids,
            })
            .await?;
        }
        self.read_users(&mut index, sink).await?;
        if let Some(groups) = self.settings.groups.clone() {
            self.index_groups(&groups, &mut index).await?;
            if delta {
                let ids = index.groups.values().cloned().collect();
                sink.accept(SourceBatch::Present {
                    kind: MemberKind::Group,
                    ids,
                })
                .await?;
            }
            self.read_groups(&groups, &index, sink).await?;
        }
        Ok(())
    }

    /// `attrs`, with the timestamps when this read looks for the highest one.
    fn with_stamps(&self, mut attrs: Vec<String>) -> Vec<String> {
        if self.stamps.is_some() {
            attrs.extend(timestamps::ATTRIBUTES.map(str::to_owned));
        }
        attrs
    }

    /// Notes `entry`'s timestamps when this read looks for the highest one.
    fn note_stamps(&mut self, entry: &Entry) {
        if let Some(stamps) = self.stamps.as_mut() {
            stamps.note(entry);
        }
    }

    /// `filter`, narrowed to the changed entries in an incremental read.
    fn changed(&self, filter: &str) -> String {
        match &self.changed_since {
            Some(clause) => format!("(&{filter}{clause})"),
            None => filter.to_owned(),
        }
    }

    /// Every user's normalised DN, id and user name (those a full read would map).
    pub(super) async fn index_users(&mut self, index: &mut Index) -> Result<(), ConnectorError> {
        let users = self.settings.users.clone();
        let what = format!("listing users under {}", users.base_dn);
        let profile = self.profile().clone();
        let attrs = vec![profile.id.clone(), profile.user_name.clone()];
        let paged = self.paged(&users, users.filter.clone(), attrs);
        self.each_entry(paged, &what, |entry| {
            let id = records::external_id(&entry, &profile);
            let login = entry.first(&profile.user_name).map(str::to_lowercase);
            if let (Some(key), Some(id), Some(login)) = (dn::normalize(&entry.dn), id, login) {
                index.logins.insert(login, id.clone());
                index.users.insert(key, id);
            }
        })
        .await
    }

    /// Runs `request` to its last page, giving each entry to `each`.
    async fn each_entry(
        &mut self,
        mut paged: Paged,
        what: &str,
        mut each: impl FnMut(Entry),
    ) -> Result<(), ConnectorError> {
        while let Some(entries) = paged.next(self.directory).await.map_err(failed(what))? {
            entries.into_iter().for_each(&mut each);
        }
        self.page_size = paged.size();
        note_references(paged.references, what);
        Ok(())
    }

    /// With `inactive_filter`: the normalised DNs of the users it matches.
    pub(super) async fn inactive_dns(&mut self) -> Result<HashSet<String>, ConnectorError> {
        let Inactive::Filter(filter) = &self.profile().inactive else {
            return Ok(HashSet::new());
        };
        let users = &self.settings.users;
        let filter = format!("(&{}{filter})", users.filter);
        let paged = self.paged(users, filter, vec!["1.1".to_owned()]);
        let what = format!("searching inactive users under {}", users.base_dn);
        let mut dns = HashSet::new();
        self.each_entry(paged, &what, |entry| {
            dns.extend(dn::normalize(&entry.dn));
        })
        .await?;
        Ok(dns)
    }

    async fn read_users(
        &mut self,
        index: &mut Index,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let inactive = self.inactive_dns().await?;
        let users = self.settings.users.clone();
        let what = format!("searching users under {}", users.base_dn);
        let attrs = self.with_stamps(self.profile().user_attributes());
        let mut paged = self.paged(&users, self.changed(&users.filter), attrs);
        let mut batch = Batcher::users();
        let mut ids = HashSet::new();
        let mut dns = HashSet::new();
        let mut skipped = 0usize;
        while let Some(entries) = paged.next(self.directory).await.map_err(failed(&what))? {
            for entry in entries {
                self.note_stamps(&entry);
                let key = dn::normalize(&entry.dn);
                let matched = key.as_ref().is_some_and(|k| inactive.contains(k));
                let Some(user) = records::to_user(entry, self.profile(), matched) else {
                    skipped += 1;
                    continue;
                };
                let Some(key) = key else {
                    skipped += 1;
                    continue;
                };
                // The same entry twice, or two entries with one id (a copied
                // entryUUID): the first one read is kept.
                if !dns.insert(key.clone()) || !ids.insert(user.external_id.clone()) {
                    continue;
                }
                index.add_user(key, &user);
                batch.push(user, sink).await?;
            }
        }
        batch.finish(sink).await?;
        self.page_size = paged.size();
        note_references(paged.references, &what);
        if skipped > 0 {
            tracing::warn!(
                kind = super::KIND,
                skipped,
                "{skipped} user entries under {} have no `{}` or `{}`; they are not read",
                users.base_dn,
                self.profile().id,
                self.profile().user_name
            );
        }
        Ok(())
    }

    /// Every group's normalised DN and id.
    pub(super) async fn index_groups(
        &mut self,
        groups: &SearchBase,
        index: &mut Index,
    ) -> Result<(), ConnectorError> {
        let what = format!("searching groups under {}", groups.base_dn);
        let paged = self.paged(
            groups,
            groups.filter.clone(),
            vec![self.profile().id.clone()],
        );
        let profile = self.profile().clone();
        self.each_entry(paged, &what, |entry| {
            if let (Some(key), Some(id)) = (
                dn::normalize(&entry.dn),
                records::external_id(&entry, &profile),
            ) {
                index.groups.insert(key, id);
            }
        })
        .await
    }

    async fn read_groups(
        &mut self,
        groups: &SearchBase,
        index: &Index,
        sink: &mut dyn BatchSink,
    ) -> Result<(), ConnectorError> {
        let what = format!("searching groups under {}", groups.base_dn);
        let attrs = self.with_stamps(self.profile().group_attributes());
        let mut paged = self.paged(groups, self.changed(&groups.filter), attrs);
        let mut batch = Batcher::groups();
        let mut seen = HashSet::new();
        let mut outside = 0usize;
        while let Some(entries) = paged.next(self.directory).await.map_err(failed(&what))? {
            for entry in entries {
                self.note_stamps(&entry);
                let Some(id) = records::external_id(&entry, self.profile()) else {
                    continue;
                };
                if !seen.insert(id.clone()) {
                    continue;
                }
                let members = self.members(&entry, index, &mut outside).await?;
                let group = records::to_group(id, entry, self.profile(), members);
                batch.push(group, sink).await?;
            }
        }
        batch.finish(sink).await?;
        note_references(paged.references, &what);
        note_outside(outside);
        Ok(())
    }

    /// A group's direct members: member DNs (all ranges) resolved to users or groups
    /// read, then `memberUid` logins resolved to users; what names nothing read is
    /// counted in `outside`.
    pub(super) async fn members(
        &mut self,
        entry: &Entry,
        index: &Index,
        outside: &mut usize,
    ) -> Result<Vec<MemberRef>, ConnectorError> {
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        for attribute in self.profile().member.clone() {
            for value in self.all_values(entry, &attribute).await? {
                let key = dn::normalize(member_dn(&value));
                let found = key.and_then(|key| {
                    if let Some(id) = index.users.get(&key) {
                        Some(MemberRef::user(id))
                    } else {
                        index.groups.get(&key).map(MemberRef::group)
                    }
                });
                match found {
                    Some(member) if seen.insert(member.clone()) => members.push(member),
                    Some(_) => {}
                    None => *outside += 1,
                }
            }
        }
        if let Some(attribute) = &self.profile().member_uid {
            for login in entry.values(attribute) {
                match index.logins.get(&login.trim().to_lowercase()) {
                    Some(id) => {
                        let member = MemberRef::user(id);
                        if seen.insert(member.clone()) {
                            members.push(member);
                        }
                    }
                    None => *outside += 1,
                }
            }
        }
        Ok(members)
    }

    /// Every value of `attribute` in `entry`: the plain attribute, or its ranges
    /// (`member;range=0-1499`, then the next ranges read from the server until one ends
    /// in `*`).
    async fn all_values(
        &mut self,
        entry: &Entry,
        attribute: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let mut values = entry.values(attribute).to_vec();
        let mut next = ranged(entry, attribute, &mut values);
        let what = format!("reading the `{attribute}` values of {}", entry.dn);
        let mut rounds = 0u32;
        while let Some(start) = next {
            rounds += 1;
            let request = SearchRequest {
                base: entry.dn.clone(),
                scope: Scope::Base,
                filter: "(objectClass=*)".to_owned(),
                attrs: vec![range::request(attribute, start)],
            };
            let page = self
                .directory
                .page(&request, None)
                .await
                .map_err(failed(&what))?;
            let Some(more) = page.entries.first() else {
                return Err(failed(&what)(LdapReadError::Protocol(
                    "the entry disappeared during ranged retrieval".to_owned(),
                )));
            };
            let before = values.len();
            next = ranged(more, attribute, &mut values);
            // A server that answers with no new values would loop forever.
            if next.is_some() && (values.len() == before || rounds > 100_000) {
                return Err(failed(&what)(LdapReadError::Protocol(format!(
                    "ranged retrieval of `{attribute}` stopped making progress at {start}"
                ))));
            }
        }
        Ok(values)
    }
}

/// Adds the values of `attribute;range=...` in `entry` to `values`; where the next range
/// starts, when there is one.
fn ranged(entry: &Entry, attribute: &str, values: &mut Vec<String>) -> Option<u64> {
    let mut next = None;
    for (name, found) in &entry.text {
        match range::parse(name, attribute) {
            Some(RangeEnd::Last) => values.extend(found.iter().cloned()),
            Some(RangeEnd::Next(start)) => {
                values.extend(found.iter().cloned());
                next = Some(start);
            }
            None => {}
        }
    }
    next
}

/// Member values that named nothing read are left out of the groups.
pub(super) fn note_outside(outside: usize) {
    if outside > 0 {
        tracing::info!(
            kind = super::KIND,
            outside,
            "{outside} member values name entries that were not read (outside the \
             searched bases or filters); they are left out"
        );
    }
}

/// Continuation references are other naming contexts (AD's `DomainDnsZones`,
/// `ForestDnsZones`, `Configuration` under a domain root); they are not followed.
pub(super) fn note_references(references: usize, what: &str) {
    if references > 0 {
        tracing::info!(
            kind = super::KIND,
            references,
            "{what}: {references} continuation references to other naming contexts were \
             not followed"
        );
    }
}
