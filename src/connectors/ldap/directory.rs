//! The one operation a read needs from a directory server, a search returning one page,
//! as a trait: the ldap3 session implements it (`client.rs`), and unit tests implement it
//! in memory, so paging, ranged retrieval (Active Directory's, which no local server
//! offers), member resolution and the incomplete-search errors are tested without a
//! server.

use std::collections::HashMap;

use async_trait::async_trait;

use super::content_sync::Refresh;

/// How deep a search goes below its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The base entry only.
    Base,
    /// The base's direct children.
    One,
    /// The base and everything below it.
    Sub,
}

/// A search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub base: String,
    pub scope: Scope,
    pub filter: String,
    pub attrs: Vec<String>,
}

/// One entry as the server returned it: values that are UTF-8 in `text`, the others (an
/// `objectGUID`) in `binary`, under the attribute names the server used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub text: HashMap<String, Vec<String>>,
    pub binary: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The text values of attribute `name` (case-insensitive; without options such as
    /// `;range=`).
    pub fn values(&self, name: &str) -> &[String] {
        self.text
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, values)| values.as_slice())
    }

    /// The first text value of `name`, when it is not empty.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.values(name)
            .first()
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` as bytes, whether the server's value was UTF-8 or not.
    pub fn first_bytes(&self, name: &str) -> Option<&[u8]> {
        self.binary
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first())
            .map(Vec::as_slice)
            .or_else(|| self.values(name).first().map(String::as_bytes))
    }

    /// Whether the entry holds attribute `name` at all.
    pub fn has(&self, name: &str) -> bool {
        self.first_bytes(name).is_some()
    }
}

/// One page of a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Search continuation references (parts of the tree held by other servers, such as
    /// AD's `DomainDnsZones`); they are not followed.
    pub references: usize,
    /// The paged-results cookie for the next page; `None` when this was the last page.
    pub cookie: Option<Vec<u8>>,
}

/// Why a directory operation failed. Any of them ends the read as incomplete: nothing is
/// removed from the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapReadError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "the server requires a protected connection for a simple bind \
         (strongerAuthRequired): use StartTLS (`starttls = true`) or an ldaps:// URL"
    )]
    StrongerAuthRequired,
    #[error("bind as `{dn}` refused: {message}")]
    Bind { dn: String, message: String },
    /// The server answered the search with a result code other than success.
    #[error("{}", result_message(*rc, text))]
    Result { rc: u32, text: String },
    /// The connection failed or timed out mid-operation.
    #[error("the connection failed: {0}")]
    Transport(String),
    /// The server's answer cannot be used (a paged-results control that cannot be read).
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// What an LDAP result code means for a read, with the server's text.
fn result_message(rc: u32, text: &str) -> String {
    let what = match rc {
        3 => "the server's time limit ended the search (timeLimitExceeded): the read is \
              incomplete"
            .to_string(),
        4 => "the server's size limit ended the search (sizeLimitExceeded): the read is \
              incomplete; lower `page_size` or raise the bind account's limit for paged \
              searches"
            .to_string(),
        10 => "the server sent a referral (referrals are not followed): point the base DN \
               at the server holding it"
            .to_string(),
        11 => "the server's administrative limit ended the search (adminLimitExceeded): \
               lower `page_size`"
            .to_string(),
        12 => "the server does not support the paged results control (RFC 2696)".to_string(),
        32 => "the base DN does not exist (noSuchObject)".to_string(),
        50 => "the bind account may not search there (insufficientAccessRights)".to_string(),
        other => format!("result code {other}"),
    };
    if text.trim().is_empty() {
        what
    } else {
        format!("{what}; server says: {}", text.trim())
    }
}

/// A directory server, one page at a time.
#[async_trait]
pub trait Directory: Send {
    /// Runs `request`; with `paging` (page size and the previous page's cookie, empty
    /// for the first) as a paged search (RFC 2696), else as a plain one.
    async fn page(
        &mut self,
        request: &SearchRequest,
        paging: Option<(u32, Vec<u8>)>,
    ) -> Result<Page, LdapReadError>;

    /// Runs each of `requests` as a plain search (not paged), their answers in the same
    /// order; a server session may have several in flight at once.
    async fn searches(&mut self, requests: Vec<SearchRequest>) -> Vec<Result<Page, LdapReadError>> {
        let mut pages = Vec::with_capacity(requests.len());
        for request in &requests {
            pages.push(self.page(request, None).await);
        }
        pages
    }

    /// Runs `request` as an RFC 4533 refreshOnly poll from `cookie` (`None`: the
    /// initial content). Directories that cannot synchronise refuse it as a server
    /// without the control would (unavailableCriticalExtension).
    async fn refresh(
        &mut self,
        _request: &SearchRequest,
        _cookie: Option<Vec<u8>>,
    ) -> Result<Refresh, LdapReadError> {
        Err(LdapReadError::Result {
            rc: 12,
            text: "content synchronisation is not offered".to_owned(),
        })
    }
}

/// The entry at `dn` (a base-scope search, not paged); `None` when it does not exist.
pub async fn read_entry(
    directory: &mut dyn Directory,
    dn: &str,
    attrs: &[&str],
) -> Result<Option<Entry>, LdapReadError> {
    let request = SearchRequest {
        base: dn.to_owned(),
        scope: Scope::Base,
        filter: "(objectClass=*)".to_owned(),
        attrs: attrs.iter().map(|a| (*a).to_owned()).collect(),
    };
    match directory.page(&request, None).await {
        Ok(page) => Ok(page.entries.into_iter().next()),
        Err(LdapReadError::Result { rc: 32, .. }) => Ok(None),
        Err(err) => Err(err),
    }
}
