//! Unit tests of incremental reads by content sync: the checkpoint's cookies and when
//! they are used, and a delta over an in-memory directory (changed entries, removals,
//! a present phase, members of changed groups looked up, a refused cookie).

use super::*;
use crate::connectors::SourceBatch;
use crate::model::MemberKind;
use changes::Cookies;
use content_sync::Refresh;
use sync_reader::{Polled, Polls};

pub(super) fn openldap() -> LdapSettings {
    let mut settings = ad_settings(100);
    *settings.profile = Profile::of(Preset::OpenLdap);
    settings.users.base_dn = "ou=people,dc=example,dc=com".into();
    settings.users.filter = "(objectClass=inetOrgPerson)".into();
    if let Some(groups) = settings.groups.as_mut() {
        groups.base_dn = "ou=groups,dc=example,dc=com".into();
        groups.filter = "(objectClass=groupOfNames)".into();
    }
    settings.incremental = true;
    settings
}

fn cookies(users: &[u8], groups: &[u8]) -> Cookies {
    Cookies {
        users: content_sync::encode_cookie(users),
        groups: Some(content_sync::encode_cookie(groups)),
    }
}

#[test]
fn cookies_are_used_only_from_a_checkpoint_of_the_same_searches() {
    let settings = openldap();
    let marker = changes::Marker {
        server: "dc=example,dc=com".into(),
        value: "20260101000000.000000Z#000000#000#000000".into(),
    };
    let stored = cookies(b"u1", b"g1");
    let text = changes::checkpoint_with_cookies(&marker, &settings, 1_000, &stored);
    assert_eq!(
        changes::plan_sync(Some(&text), &marker, &settings, 2_000),
        (Some(stored.clone()), 1_000)
    );
    // The marker is kept too: a server that stops offering content sync continues
    // with change filters.
    assert_eq!(
        changes::plan(Some(&text), &marker, &settings, 2_000).0,
        Some(format!("(entryCSN>={})", marker.value))
    );
    // Past full_read_every, from another server, other searches, an older checkpoint
    // without cookies, or none: no cookies, so a full read (or change filters).
    assert_eq!(
        changes::plan_sync(Some(&text), &marker, &settings, 1_000 + 86_400),
        (None, 87_400)
    );
    let other = changes::Marker {
        server: "dc=other".into(),
        ..marker.clone()
    };
    assert_eq!(
        changes::plan_sync(Some(&text), &other, &settings, 2_000).0,
        None
    );
    let mut narrower = settings.clone();
    narrower.users.filter = "(&(objectClass=inetOrgPerson)(ou=IT))".into();
    assert_eq!(
        changes::plan_sync(Some(&text), &marker, &narrower, 2_000).0,
        None
    );
    let older = changes::checkpoint(&marker, &settings, 1_000);
    assert_eq!(
        changes::plan_sync(Some(&older), &marker, &settings, 2_000).0,
        None
    );
    assert_eq!(changes::plan_sync(None, &marker, &settings, 2_000).0, None);
}

#[test]
fn a_poll_without_a_new_cookie_keeps_the_old_one() {
    let old = cookies(b"u1", b"g1");
    let polls = Polls {
        users: Refresh {
            cookie: Some(b"u2".to_vec()),
            ..Refresh::default()
        },
        groups: Some(Refresh::default()),
    };
    assert_eq!(
        sync_reader::next_cookies(&old, &polls),
        cookies(b"u2", b"g1")
    );
}

/// A directory that answers polls with what it was given and base searches and login
/// searches from its entries, counting them.
struct Synced {
    users: Result<Refresh, LdapReadError>,
    groups: Result<Refresh, LdapReadError>,
    entries: Vec<Entry>,
    cookies_seen: Vec<Option<Vec<u8>>>,
    lookups: usize,
}

impl Synced {
    fn new(users: Refresh, groups: Refresh, entries: Vec<Entry>) -> Synced {
        Synced {
            users: Ok(users),
            groups: Ok(groups),
            entries,
            cookies_seen: Vec::new(),
            lookups: 0,
        }
    }
}

#[async_trait]
impl Directory for Synced {
    async fn page(
        &mut self,
        request: &SearchRequest,
        paging: Option<(u32, Vec<u8>)>,
    ) -> Result<Page, LdapReadError> {
        assert!(paging.is_none(), "lookups are single searches: {request:?}");
        self.lookups += 1;
        let found: Vec<Entry> = if request.scope == Scope::Base {
            let key = dn::normalize(&request.base);
            self.entries
                .iter()
                .filter(|e| dn::normalize(&e.dn) == key)
                .cloned()
                .collect()
        } else {
            // `(&<users' filter>(uid=<login>))`
            let login = request.filter.split("(uid=").nth(1).unwrap_or_default();
            let login = login.trim_end_matches(')');
            self.entries
                .iter()
                .filter(|e| e.first("uid") == Some(login))
                .cloned()
                .collect()
        };
        if found.is_empty() && request.scope == Scope::Base {
            return Err(LdapReadError::Result {
                rc: 32,
                text: String::new(),
            });
        }
        Ok(Page {
            entries: found,
            ..Page::default()
        })
    }

    async fn refresh(
        &mut self,
        request: &SearchRequest,
        cookie: Option<Vec<u8>>,
    ) -> Result<Refresh, LdapReadError> {
        self.cookies_seen.push(cookie);
        if request.base.starts_with("ou=groups") {
            self.groups.clone()
        } else {
            self.users.clone()
        }
    }
}

async fn delta(directory: &mut Synced, settings: &LdapSettings) -> Vec<SourceBatch> {
    let polled = sync_reader::poll(directory, settings, &cookies(b"u1", b"g1"))
        .await
        .expect("poll");
    let Polled::Changes(polls) = polled else {
        panic!("changes expected: {polled:?}");
    };
    let mut sink = CollectingSink::default();
    reader::Reader {
        directory,
        settings,
        page_size: 100,
        changed_since: None,
        stamps: None,
    }
    .apply(polls, &mut sink)
    .await
    .expect("apply");
    sink.batches
}

/// A delete phase: the changed user and groups are sent, the deleted id removed, the
/// members of a changed group that did not change looked up (by DN, and by login for
/// memberUid), a member that no longer exists left out, and nothing listed.
#[tokio::test]
async fn a_delta_sends_changes_and_removals_and_looks_up_members() {
    let settings = openldap();
    let team = ol_group(
        "team",
        &[(
            "member",
            &[
                "uid=ann,ou=people,dc=example,dc=com",
                "UID=Carol,OU=People,DC=example,DC=com",
                "uid=gone,ou=people,dc=example,dc=com",
                "cn=posix,ou=groups,dc=example,dc=com",
                "uid=outsider,ou=elsewhere,dc=example,dc=com",
            ],
        )],
    );
    let posix = ol_group("posix", &[("memberUid", &["DAVE"])]);
    let users = Refresh {
        changed: vec![ol_user("ann", false)],
        deleted: vec!["uuid-bob".into(), "uuid-team".into()],
        cookie: Some(b"u2".to_vec()),
        ..Refresh::default()
    };
    let groups = Refresh {
        changed: vec![team, posix],
        deleted: vec!["uuid-old-group".into()],
        ..Refresh::default()
    };
    let mut outsider = ol_user("outsider", false);
    outsider.dn = "uid=outsider,ou=elsewhere,dc=example,dc=com".into();
    let unchanged = vec![ol_user("carol", false), ol_user("dave", false), outsider];
    let mut directory = Synced::new(users, groups, unchanged);
    let batches = delta(&mut directory, &settings).await;
    assert_eq!(
        directory.cookies_seen,
        vec![Some(b"u1".to_vec()), Some(b"g1".to_vec())]
    );
    // carol by DN, dave by login; the outsider is outside the users' base, so not
    // even looked up; `gone` answers noSuchObject.
    assert_eq!(directory.lookups, 3);
    let sink = CollectingSink {
        batches: batches.clone(),
    };
    let users: Vec<String> = sink.users().into_iter().map(|u| u.external_id).collect();
    assert_eq!(users, ["uuid-ann"]);
    let groups = sink.groups();
    let team = groups
        .iter()
        .find(|g| g.external_id == "uuid-team")
        .unwrap();
    assert_eq!(
        team.members,
        [
            MemberRef::user("uuid-ann"),
            MemberRef::user("uuid-carol"),
            MemberRef::group("uuid-posix"),
        ]
    );
    let posix = groups
        .iter()
        .find(|g| g.external_id == "uuid-posix")
        .unwrap();
    assert_eq!(posix.members, [MemberRef::user("uuid-dave")]);
    // The group changed is not removed as a user (syncprov names it to the users'
    // poll); no present phase, so no id listing.
    assert!(batches.contains(&SourceBatch::Removed {
        users: vec!["uuid-bob".into()],
        groups: vec!["uuid-old-group".into()],
    }));
    assert!(
        !batches
            .iter()
            .any(|b| matches!(b, SourceBatch::Present { .. }))
    );
}

/// A present phase: what is present (the unchanged ids and the changed ones) is listed,
/// so the mirror removes the rest.
#[tokio::test]
async fn a_present_phase_lists_the_ids_still_there() {
    let settings = openldap();
    let users = Refresh {
        changed: vec![ol_user("ann", false)],
        present: Some(vec!["uuid-carol".into()]),
        ..Refresh::default()
    };
    let groups = Refresh {
        present: Some(Vec::new()),
        ..Refresh::default()
    };
    let mut directory = Synced::new(users, groups, Vec::new());
    let batches = delta(&mut directory, &settings).await;
    let present = |kind| {
        batches.iter().find_map(|b| match b {
            SourceBatch::Present { kind: k, ids } if *k == kind => {
                let mut ids = ids.clone();
                ids.sort();
                Some(ids)
            }
            _ => None,
        })
    };
    assert_eq!(
        present(MemberKind::User),
        Some(vec!["uuid-ann".to_owned(), "uuid-carol".to_owned()])
    );
    assert_eq!(present(MemberKind::Group), Some(Vec::new()));
    assert_eq!(directory.lookups, 0);
}

/// e-syncRefreshRequired, or a change set above the size limit, asks for a full read;
/// other failures fail the read.
#[tokio::test]
async fn a_refused_cookie_asks_for_a_full_read() {
    let settings = openldap();
    for (rc, reload) in [(4096, true), (53, true), (4, true), (50, false)] {
        let mut directory = Synced::new(Refresh::default(), Refresh::default(), Vec::new());
        directory.groups = Err(LdapReadError::Result {
            rc,
            text: String::new(),
        });
        let polled = sync_reader::poll(&mut directory, &settings, &cookies(b"u1", b"g1")).await;
        match polled {
            Ok(Polled::Reload(LdapReadError::Result { rc: got, .. })) => {
                assert!(reload, "{rc}");
                assert_eq!(got, rc);
            }
            Err(err) => {
                assert!(!reload, "{rc}: {err}");
                assert!(
                    err.to_string().contains("polling changes of groups"),
                    "{err}"
                );
            }
            Ok(other) => panic!("{rc}: {other:?}"),
        }
    }
    // A stored cookie that is not hex is not sent.
    let mut directory = Synced::new(Refresh::default(), Refresh::default(), Vec::new());
    let broken = Cookies {
        users: "not hex".into(),
        groups: None,
    };
    let polled = sync_reader::poll(&mut directory, &settings, &broken).await;
    assert!(matches!(polled, Ok(Polled::Reload(_))), "{polled:?}");
    assert!(directory.cookies_seen.is_empty());
}
