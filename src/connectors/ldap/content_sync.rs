//! RFC 4533 content synchronisation in refreshOnly mode, on the wire: the Sync Request
//! control (section 2.2) sent with a search and a cookie, and what comes back (Sync State
//! controls on entries, section 2.3; syncIdSet and the other Sync Info messages, section
//! 2.5; the Sync Done control, section 2.4) assembled into one [`Refresh`]: the changed
//! entries, the entryUUIDs deleted from the content, the entryUUIDs still present when
//! the server answered with a present phase (section 3.3.2), and the next cookie.
//!
//! ldap3 decodes the controls and messages and panics on malformed BER, so a poll runs in
//! a task of its own (as every search does, `client.rs`), where a panic fails the read.

use std::time::Duration;

use ldap3::controls::{
    EntryState, MakeCritical, RefreshMode, SyncDone, SyncInfo, SyncRequest, SyncState,
    parse_syncinfo,
};
use ldap3::{Ldap, ResultEntry, SearchEntry};

use super::client::transport_error;
use super::directory::{Entry, LdapReadError, Scope, SearchRequest};

/// The Sync Request control's OID: listed in the root DSE's `supportedControl` by a
/// server that offers content synchronisation (OpenLDAP with the syncprov overlay).
pub const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";

/// e-syncRefreshRequired (RFC 4533 sections 2.6 and 3.8): the cookie cannot be
/// continued from; the client must reload the content.
pub const REFRESH_REQUIRED: u32 = 4096;

/// One message of a refreshOnly poll, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An entry with the state its Sync State control gives and its entryUUID.
    Entry {
        entry: Entry,
        state: State,
        uuid: Vec<u8>,
    },
    /// A syncIdSet: the UUIDs of deleted entries (`deletes`) or of present ones.
    IdSet {
        uuids: Vec<Vec<u8>>,
        deletes: bool,
        cookie: Option<Vec<u8>>,
    },
    /// refreshPresent (`present`) or refreshDelete: the end of a phase.
    PhaseEnd {
        present: bool,
        cookie: Option<Vec<u8>>,
    },
    /// newCookie.
    Cookie(Vec<u8>),
    /// A search continuation reference (not followed).
    Reference,
}

/// An entry's Sync State (RFC 4533 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Add,
    Modify,
    Delete,
}

/// What one refreshOnly poll said about the content since its cookie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Entries added or changed, with all their attributes.
    pub changed: Vec<Entry>,
    /// The entryUUIDs of entries no longer in the content (delete phase).
    pub deleted: Vec<String>,
    /// With a present phase, the entryUUIDs of the unchanged entries: what the content
    /// holds besides `changed`; everything else left it. `None`: a delete phase only.
    pub present: Option<Vec<String>>,
    /// The cookie to poll from next time; `None` when the server sent none (nothing
    /// changed: the old one still holds).
    pub cookie: Option<Vec<u8>>,
    /// Continuation references seen (not followed).
    pub references: usize,
}

impl Refresh {
    /// Assembles the messages of a poll that ended in success, with its Sync Done
    /// control's cookie and refreshDeletes (`None`: no Sync Done control).
    pub fn assemble(
        messages: Vec<Message>,
        done: Option<(Option<Vec<u8>>, bool)>,
    ) -> Result<Refresh, LdapReadError> {
        let mut refresh = Refresh::default();
        let mut present = Vec::new();
        // Section 3.3.2: a poll is a present phase, a delete phase, or both in that
        // order. A Sync Done control with refreshDeletes FALSE (or none: FALSE is its
        // default) ends a present phase; present messages mean one took place.
        let (done_cookie, refresh_deletes) = done.unwrap_or((None, false));
        let mut present_phase = !refresh_deletes;
        for message in messages {
            match message {
                Message::Entry { entry, state, uuid } => match state {
                    State::Add | State::Modify => refresh.changed.push(entry),
                    State::Present => {
                        present_phase = true;
                        present.push(render_uuid(&uuid)?);
                    }
                    State::Delete => refresh.deleted.push(render_uuid(&uuid)?),
                },
                Message::IdSet {
                    uuids,
                    deletes,
                    cookie,
                } => {
                    let ids = uuids
                        .iter()
                        .map(|u| render_uuid(u))
                        .collect::<Result<Vec<_>, _>>()?;
                    if deletes {
                        refresh.deleted.extend(ids);
                    } else {
                        present_phase = true;
                        present.extend(ids);
                    }
                    refresh.cookie = cookie.or(refresh.cookie);
                }
                Message::PhaseEnd {
                    present: ended_present,
                    cookie,
                } => {
                    present_phase |= ended_present;
                    refresh.cookie = cookie.or(refresh.cookie);
                }
                Message::Cookie(cookie) => refresh.cookie = Some(cookie),
                Message::Reference => refresh.references += 1,
            }
        }
        refresh.cookie = done_cookie.or(refresh.cookie);
        refresh.present = present_phase.then_some(present);
        Ok(refresh)
    }
}

/// A syncUUID (16 octets, RFC 4533 section 2.1) in entryUUID's text form (RFC 4530:
/// lower-case hex, 8-4-4-4-12), as the entries' `entryUUID` values read.
pub fn render_uuid(bytes: &[u8]) -> Result<String, LdapReadError> {
    if bytes.len() != 16 {
        return Err(LdapReadError::Protocol(format!(
            "a syncUUID of {} octets (16 expected)",
            bytes.len()
        )));
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A cookie as stored in the checkpoint: lower-case hex (cookies are octet strings).
pub fn encode_cookie(cookie: &[u8]) -> String {
    cookie.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored cookie's octets; `None` when the text is not hex.
pub fn decode_cookie(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// One refreshOnly poll of `request` from `cookie` (`None`: a poll for the initial
/// content). Not paged: slapd 2.5 answers a sync search with a paged results control
/// with its first page and a Sync Done control, as if that were all.
pub async fn poll(
    mut ldap: Ldap,
    timeout: Duration,
    request: SearchRequest,
    cookie: Option<Vec<u8>>,
) -> Result<Refresh, LdapReadError> {
    let scope = match request.scope {
        Scope::Base => ldap3::Scope::Base,
        Scope::One => ldap3::Scope::OneLevel,
        Scope::Sub => ldap3::Scope::Subtree,
    };
    let ldap = ldap.with_timeout(timeout);
    // Critical: a server that cannot synchronise must refuse rather than answer as a
    // plain search (which would look like a present phase listing nothing).
    ldap.with_controls(
        SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie,
            reload_hint: false,
        }
        .critical(),
    );
    let mut stream = ldap
        .streaming_search(&request.base, scope, &request.filter, request.attrs.clone())
        .await
        .map_err(transport_error)?;
    let mut messages = Vec::new();
    while let Some(result) = stream.next().await.map_err(transport_error)? {
        messages.push(decode(result)?);
    }
    let outcome = stream.finish().await;
    if outcome.rc != 0 {
        return Err(LdapReadError::Result {
            rc: outcome.rc,
            text: outcome.text,
        });
    }
    let done = outcome
        .ctrls
        .iter()
        .find(|c| c.1.ctype == SYNC_DONE_OID && c.1.val.is_some())
        .map(|c| {
            let done: SyncDone = c.1.parse();
            (done.cookie, done.refresh_deletes)
        });
    Refresh::assemble(messages, done)
}

/// One message of a sync search, decoded by ldap3.
fn decode(result: ResultEntry) -> Result<Message, LdapReadError> {
    if result.is_intermediate() {
        return Ok(match parse_syncinfo(result) {
            SyncInfo::NewCookie(cookie) => Message::Cookie(cookie),
            SyncInfo::RefreshDelete { cookie, .. } => Message::PhaseEnd {
                present: false,
                cookie,
            },
            SyncInfo::RefreshPresent { cookie, .. } => Message::PhaseEnd {
                present: true,
                cookie,
            },
            SyncInfo::SyncIdSet {
                cookie,
                refresh_deletes,
                sync_uuids,
            } => Message::IdSet {
                uuids: sync_uuids.into_iter().collect(),
                deletes: refresh_deletes,
                cookie,
            },
        });
    }
    if result.is_ref() {
        return Ok(Message::Reference);
    }
    let state = result
        .1
        .iter()
        .find(|c| c.1.ctype == SYNC_STATE_OID && c.1.val.is_some())
        .map(|c| c.1.parse::<SyncState>())
        .ok_or_else(|| {
            LdapReadError::Protocol("an entry of a sync search has no Sync State control".into())
        })?;
    let SearchEntry {
        dn,
        attrs,
        bin_attrs,
    } = SearchEntry::construct(result);
    Ok(Message::Entry {
        entry: Entry {
            dn,
            text: attrs,
            binary: bin_attrs,
        },
        state: match state.state {
            EntryState::Present => State::Present,
            EntryState::Add => State::Add,
            EntryState::Modify => State::Modify,
            EntryState::Delete => State::Delete,
        },
        uuid: state.entry_uuid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u8) -> Vec<u8> {
        let mut bytes = vec![0u8; 16];
        bytes[15] = n;
        bytes
    }

    fn id(n: u8) -> String {
        format!("00000000-0000-0000-0000-0000000000{n:02x}")
    }

    fn changed(dn: &str, n: u8, state: State) -> Message {
        Message::Entry {
            entry: Entry {
                dn: dn.into(),
                ..Entry::default()
            },
            state,
            uuid: uuid(n),
        }
    }

    #[test]
    fn uuids_render_as_entry_uuid_values() {
        let bytes = [
            0x00, 0x11, 0xd8, 0x52, 0x85, 0xac, 0x10, 0x41, 0x9a, 0x1f, 0x83, 0xea, 0xa1, 0x82,
            0x88, 0x03,
        ];
        assert_eq!(
            render_uuid(&bytes).unwrap(),
            "0011d852-85ac-1041-9a1f-83eaa1828803"
        );
        assert!(matches!(
            render_uuid(&bytes[..15]),
            Err(LdapReadError::Protocol(_))
        ));
    }

    #[test]
    fn cookies_round_trip_through_hex() {
        let cookie = b"rid=000,csn=20261206103154.324132Z#000000#000#000000\x00\xff".to_vec();
        let text = encode_cookie(&cookie);
        assert!(text.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(decode_cookie(&text), Some(cookie));
        assert_eq!(decode_cookie("abc"), None);
        assert_eq!(decode_cookie("zz"), None);
        assert_eq!(decode_cookie("é1"), None);
        assert_eq!(decode_cookie(""), Some(Vec::new()));
    }

    /// What slapd's syncprov sends with a session log: the deleted UUIDs in syncIdSets,
    /// then the changed entries, then Sync Done with refreshDeletes TRUE.
    #[test]
    fn a_delete_phase_names_what_was_deleted() {
        let refresh = Refresh::assemble(
            vec![
                Message::IdSet {
                    uuids: vec![uuid(3)],
                    deletes: true,
                    cookie: Some(b"mid".to_vec()),
                },
                changed("uid=b", 2, State::Add),
                changed("uid=c", 4, State::Modify),
            ],
            Some((Some(b"end".to_vec()), true)),
        )
        .unwrap();
        assert_eq!(refresh.changed.len(), 2);
        assert_eq!(refresh.deleted, vec![id(3)]);
        assert_eq!(refresh.present, None);
        assert_eq!(refresh.cookie.as_deref(), Some(&b"end"[..]));
    }

    /// Without a session log syncprov answers with a present phase: a syncIdSet of the
    /// unchanged entries and refreshDeletes FALSE.
    #[test]
    fn a_present_phase_lists_what_is_still_there() {
        let refresh = Refresh::assemble(
            vec![
                Message::IdSet {
                    uuids: vec![uuid(1), uuid(2)],
                    deletes: false,
                    cookie: None,
                },
                changed("uid=c", 3, State::Add),
                changed("", 9, State::Present),
            ],
            Some((Some(b"end".to_vec()), false)),
        )
        .unwrap();
        let mut present = refresh.present.unwrap();
        present.sort();
        assert_eq!(present, vec![id(1), id(2), id(9)]);
        assert_eq!(refresh.changed.len(), 1);
        assert!(refresh.deleted.is_empty());
    }

    /// A present phase followed by a delete phase (section 3.3.2): both sets hold.
    #[test]
    fn a_present_phase_then_a_delete_phase() {
        let refresh = Refresh::assemble(
            vec![
                Message::IdSet {
                    uuids: vec![uuid(1)],
                    deletes: false,
                    cookie: None,
                },
                Message::PhaseEnd {
                    present: true,
                    cookie: Some(b"between".to_vec()),
                },
                changed("", 5, State::Delete),
            ],
            Some((None, true)),
        )
        .unwrap();
        assert_eq!(refresh.present, Some(vec![id(1)]));
        assert_eq!(refresh.deleted, vec![id(5)]);
        assert_eq!(refresh.cookie.as_deref(), Some(&b"between"[..]));
    }

    /// Nothing changed: slapd sends only Sync Done, refreshDeletes TRUE and no cookie,
    /// so the stored cookie is kept and nothing is removed.
    #[test]
    fn nothing_changed_keeps_the_cookie_and_removes_nothing() {
        let refresh = Refresh::assemble(Vec::new(), Some((None, true))).unwrap();
        assert_eq!(refresh, Refresh::default());
        // An initial content poll (or a cookie the server ignored) is a present phase
        // of what it sent.
        let initial =
            Refresh::assemble(vec![changed("uid=a", 1, State::Add)], Some((None, false))).unwrap();
        assert_eq!(initial.present, Some(Vec::new()));
        assert_eq!(initial.changed.len(), 1);
    }

    #[test]
    fn a_malformed_uuid_fails_the_poll() {
        let err = Refresh::assemble(
            vec![Message::IdSet {
                uuids: vec![vec![1, 2, 3]],
                deletes: true,
                cookie: None,
            }],
            None,
        )
        .unwrap_err();
        assert!(matches!(err, LdapReadError::Protocol(_)), "{err}");
    }
}
