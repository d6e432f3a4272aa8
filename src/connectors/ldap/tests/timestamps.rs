//! Unit tests of incremental reads by `modifyTimestamp`: which method a server gets,
//! GeneralizedTime parsing and formatting, the marker (the highest timestamp read, less
//! the margin and the read's duration), the checkpoint and when it is used, and reads
//! over an in-memory OpenLDAP without `contextCSN`.

use super::super::timestamps;
use super::*;
use crate::connectors::{ReadMode, SourceBatch};
use crate::model::MemberKind;
use changes::Method;
use timestamps::{Highest, MARGIN_SECS, Stamp};

#[test]
fn the_method_is_the_best_the_server_allows() {
    use Preset::{ActiveDirectory as Ad, OpenLdap as Ol};
    assert_eq!(changes::method(Ol, true, true), Method::ContentSync);
    assert_eq!(changes::method(Ol, true, false), Method::ChangeFilter);
    // Without contextCSN: modifyTimestamp, whatever else the server offers.
    assert_eq!(changes::method(Ol, false, false), Method::Timestamps);
    assert_eq!(changes::method(Ol, false, true), Method::Timestamps);
    // Active Directory keeps its USN; without one every read is full.
    assert_eq!(changes::method(Ad, true, false), Method::ChangeFilter);
    assert_eq!(changes::method(Ad, true, true), Method::ChangeFilter);
    assert_eq!(changes::method(Ad, false, false), Method::Full);
}

#[test]
fn generalized_times_are_parsed_with_fractions_and_zones() {
    // 2024-01-02T03:04:05Z.
    let base = 1_704_164_645;
    let at = |secs: i64, nanos: u32| Some(Stamp { secs, nanos });
    assert_eq!(timestamps::parse("20240102030405Z"), at(base, 0));
    assert_eq!(timestamps::parse(" 20240102030405Z "), at(base, 0));
    assert_eq!(
        timestamps::parse("20240102030405.123456Z"),
        at(base, 123_456_000)
    );
    assert_eq!(
        timestamps::parse("20240102030405,5Z"),
        at(base, 500_000_000)
    );
    assert_eq!(timestamps::parse("20240102030405.0Z"), at(base, 0));
    // A fraction of the last unit given: minutes, hours.
    assert_eq!(timestamps::parse("202401020304.5Z"), at(base - 5 + 30, 0));
    assert_eq!(timestamps::parse("2024010203Z"), at(base - 245, 0));
    // Offsets from UTC.
    assert_eq!(timestamps::parse("20240102050405+0200"), at(base, 0));
    assert_eq!(timestamps::parse("20240102010405-02"), at(base, 0));
    assert_eq!(
        timestamps::parse("20240102033405.25+0030"),
        at(base, 250_000_000)
    );
    // A leap second reads as the second before it.
    assert_eq!(
        timestamps::parse("20161231235960Z"),
        timestamps::parse("20161231235959Z")
    );
    for bad in [
        "",
        "2024Z",
        "20240102030405",
        "20240102030405.Z",
        "20241302030405Z",
        "20240230030405Z",
        "20240102030405X",
        "20240102030405+2",
        "20240102030405+02:00",
        "2024010203040Z",
        "20240102030405Z#000000#000#000000",
    ] {
        assert_eq!(timestamps::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn generalized_times_are_formatted_in_whole_utc_seconds() {
    assert_eq!(
        timestamps::format(1_704_164_645).as_deref(),
        Some("20240102030405Z")
    );
    assert_eq!(timestamps::format(0).as_deref(), Some("19700101000000Z"));
    let again = timestamps::format(1_704_164_645).and_then(|t| timestamps::parse(&t));
    assert_eq!(again.map(|s| s.secs), Some(1_704_164_645));
}

#[test]
fn the_marker_is_the_highest_timestamp_less_the_margin_and_the_read() {
    let mut highest = Highest::default();
    assert_eq!(highest.value(), None);
    highest.offer("not a time");
    assert_eq!(highest.value(), None);
    highest.offer("20240102030405Z");
    // Later, though written in another zone and with a fraction.
    highest.offer("20240102050405.5+0200");
    // Earlier ones change nothing.
    highest.offer("20240102030404.999Z");
    highest.offer("19991231235959Z");
    let mut user = ol_user("ann", false);
    user.text
        .insert("createTimestamp".into(), vec!["20240102030406Z".into()]);
    highest.note(&user);
    assert_eq!(highest.value(), Some("20240102030406Z"));
    user.text
        .insert("modifyTimestamp".into(), vec!["20240102030407Z".into()]);
    highest.note(&user);
    assert_eq!(highest.value(), Some("20240102030407Z"));

    // 60 s of margin and the 3 s the read took, counted from the marker's second.
    assert_eq!(MARGIN_SECS, 60);
    assert_eq!(
        timestamps::changed_since("20240102030405.9Z", 3).as_deref(),
        Some("(|(modifyTimestamp>=20240102030302Z)(createTimestamp>=20240102030302Z))")
    );
    assert_eq!(
        timestamps::changed_since("20240102000030Z", 0).as_deref(),
        Some("(|(modifyTimestamp>=20240101235930Z)(createTimestamp>=20240101235930Z))")
    );
    assert_eq!(timestamps::changed_since("", 0), None);
    assert_eq!(timestamps::changed_since("*)(uid=*", 0), None);
}

#[test]
fn a_timestamp_checkpoint_is_used_only_for_the_same_method_server_and_searches() {
    let settings = sync::openldap();
    let server = "dc=example,dc=com";
    let marker = "20240102030405Z";
    let stored = timestamps::checkpoint(server, &settings, Some(marker), 2, 1_000);
    let since = timestamps::changed_since(marker, 2);
    assert!(since.is_some());
    assert_eq!(
        timestamps::plan(Some(&stored), server, &settings, 2_000),
        (since, 1_000, Some(marker.to_owned()))
    );
    let full = |now: u64| (None, now, None);
    // Past full_read_every, another server, other searches, no marker read, none or a
    // broken checkpoint: a full read.
    assert_eq!(
        timestamps::plan(Some(&stored), server, &settings, 1_000 + 86_400),
        full(87_400)
    );
    assert_eq!(
        timestamps::plan(Some(&stored), "dc=other", &settings, 2_000),
        full(2_000)
    );
    let mut narrower = settings.clone();
    narrower.users.filter = "(&(objectClass=inetOrgPerson)(ou=IT))".into();
    assert_eq!(
        timestamps::plan(Some(&stored), server, &narrower, 2_000),
        full(2_000)
    );
    let unmarked = timestamps::checkpoint(server, &settings, None, 2, 1_000);
    assert_eq!(
        timestamps::plan(Some(&unmarked), server, &settings, 2_000),
        full(2_000)
    );
    assert_eq!(
        timestamps::plan(None, server, &settings, 2_000),
        full(2_000)
    );
    assert_eq!(
        timestamps::plan(Some("{"), server, &settings, 2_000),
        full(2_000)
    );

    // A checkpoint of another method means a full read, both ways.
    let csn = changes::Marker {
        server: server.into(),
        value: "20240102030405.000000Z#000000#000#000000".into(),
    };
    let by_csn = changes::checkpoint(&csn, &settings, 1_000);
    assert_eq!(
        timestamps::plan(Some(&by_csn), server, &settings, 2_000),
        full(2_000)
    );
    assert!(
        changes::plan(Some(&by_csn), &csn, &settings, 2_000)
            .0
            .is_some()
    );
    assert_eq!(
        changes::plan(Some(&stored), &csn, &settings, 2_000),
        (None, 2_000)
    );
    let by_sync = changes::checkpoint_with_cookies(
        &csn,
        &settings,
        1_000,
        &changes::Cookies {
            users: "00".into(),
            groups: None,
        },
    );
    assert_eq!(
        timestamps::plan(Some(&by_sync), server, &settings, 2_000),
        full(2_000)
    );
    assert_eq!(
        changes::plan_sync(Some(&stored), &csn, &settings, 2_000).0,
        None
    );
}

/// An OpenLDAP without syncprov: a root DSE naming the suffix, a suffix entry without
/// `contextCSN`, and users and groups (served by [`Memory`], which ignores the change
/// filter, so what is asserted is what was asked). Every search is recorded.
struct NoSyncprov {
    memory: Memory,
    searches: Vec<SearchRequest>,
}

#[async_trait]
impl Directory for NoSyncprov {
    async fn page(
        &mut self,
        request: &SearchRequest,
        paging: Option<(u32, Vec<u8>)>,
    ) -> Result<Page, LdapReadError> {
        self.searches.push(request.clone());
        if request.scope == Scope::Base && request.base.is_empty() {
            let root = entry("", &[("namingContexts", &["dc=example,dc=com"])]);
            return Ok(Page {
                entries: vec![root],
                ..Page::default()
            });
        }
        if request.scope == Scope::Base && request.base == "dc=example,dc=com" {
            let suffix = entry("dc=example,dc=com", &[("dc", &["example"])]);
            return Ok(Page {
                entries: vec![suffix],
                ..Page::default()
            });
        }
        self.memory.page(request, paging).await
    }
}

fn stamped(mut entry: Entry, modified: &str) -> Entry {
    entry
        .text
        .insert("createTimestamp".into(), vec!["20240101000000Z".into()]);
    entry
        .text
        .insert("modifyTimestamp".into(), vec![modified.into()]);
    entry
}

#[tokio::test]
async fn reads_by_timestamps_where_the_server_shows_no_context_csn() {
    let mut settings = sync::openldap();
    if let Some(groups) = settings.groups.as_mut() {
        groups.filter = "(objectClass=groupOfNames)".into();
    }
    let users = vec![
        stamped(ol_user("ann", false), "20240102030405Z"),
        stamped(ol_user("bob", false), "20240102030409Z"),
    ];
    let team = ol_group(
        "team",
        &[("member", &["uid=ann,ou=people,dc=example,dc=com"])],
    );
    let groups = vec![stamped(team, "20240102030407Z")];
    let mut directory = NoSyncprov {
        memory: Memory::new(users, groups),
        searches: Vec::new(),
    };
    let marker = changes::read_marker(&mut directory, &settings)
        .await
        .expect("marker");
    assert_eq!(marker, None, "no contextCSN");
    let server = changes::suffix(&mut directory, &settings)
        .await
        .expect("suffix")
        .expect("a naming context holds the users");
    assert_eq!(server, "dc=example,dc=com");

    directory.searches.clear();

    // The first read is full, asks for the timestamps by name and stores the highest.
    let (first, sink) = by_timestamps(&mut directory, &settings, &server, None, 5_000).await;
    assert_eq!(first.mode, ReadMode::Full);
    assert_eq!(sink.users().len(), 2);
    assert!(
        directory
            .searches
            .iter()
            .all(|s| !s.filter.contains("Timestamp>=")),
        "{:?}",
        directory.searches
    );
    let reads: Vec<&SearchRequest> = directory
        .searches
        .iter()
        .filter(|s| s.attrs.iter().any(|a| a == "*"))
        .collect();
    assert_eq!(reads.len(), 2, "users and groups");
    for search in reads {
        for name in ["modifyTimestamp", "createTimestamp"] {
            assert!(search.attrs.iter().any(|a| a == name), "{search:?}");
        }
    }
    let stored = first.next_checkpoint.expect("a checkpoint");
    let json: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(json["method"], "modifyTimestamp");
    assert_eq!(json["marker"], "20240102030409Z", "bob's, the highest");
    assert_eq!(json["full_at"], 5_000);

    // The next one: the entries stamped since the marker less the margin and the
    // read's duration, and the listing of every DN and id (deletions).
    directory.searches.clear();
    let (second, sink) =
        by_timestamps(&mut directory, &settings, &server, Some(&stored), 6_000).await;
    assert_eq!(second.mode, ReadMode::Delta);
    let window = json["window"].as_u64().expect("window");
    assert!((1..=2).contains(&window), "{window}");
    let since = timestamps::format(1_704_164_649 - MARGIN_SECS - window as i64).expect("format");
    let changed: Vec<&str> = directory
        .searches
        .iter()
        .filter(|s| s.filter.contains("Timestamp>="))
        .map(|s| s.filter.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            format!(
                "(&(objectClass=inetOrgPerson)(|(modifyTimestamp>={since})\
                 (createTimestamp>={since})))"
            ),
            format!(
                "(&(objectClass=groupOfNames)(|(modifyTimestamp>={since})\
                 (createTimestamp>={since})))"
            ),
        ]
    );
    let present: Vec<(MemberKind, usize)> = sink
        .batches
        .iter()
        .filter_map(|b| match b {
            SourceBatch::Present { kind, ids } => Some((*kind, ids.len())),
            _ => None,
        })
        .collect();
    assert_eq!(present, [(MemberKind::User, 2), (MemberKind::Group, 1)]);
    let next: serde_json::Value =
        serde_json::from_str(&second.next_checkpoint.expect("a checkpoint")).expect("json");
    assert_eq!(next["marker"], "20240102030409Z");
    assert_eq!(next["full_at"], 5_000, "still the last full read's");

    // Entries that no longer carry timestamps (an ACL hides them): the stored marker is
    // carried forward by a delta; a full read without any stores none, so the next
    // read is full again.
    for user in directory.memory.users.iter_mut() {
        user.text.remove("modifyTimestamp");
        user.text.remove("createTimestamp");
    }
    directory.memory.groups.iter_mut().for_each(|g| {
        g.text.remove("modifyTimestamp");
        g.text.remove("createTimestamp");
    });
    let stored = serde_json::to_string(&next).expect("json");
    let (third, _) = by_timestamps(&mut directory, &settings, &server, Some(&stored), 7_000).await;
    assert_eq!(third.mode, ReadMode::Delta);
    let stored = third.next_checkpoint.expect("a checkpoint");
    assert!(
        stored.contains("\"marker\":\"20240102030409Z\""),
        "{stored}"
    );
    let (fourth, _) = by_timestamps(
        &mut directory,
        &settings,
        &server,
        Some(&stored),
        5_000 + 86_400,
    )
    .await;
    assert_eq!(fourth.mode, ReadMode::Full, "past full_read_every");
    let stored = fourth.next_checkpoint.expect("a checkpoint");
    assert!(stored.contains("\"marker\":\"\""), "{stored}");
    let (fifth, _) = by_timestamps(
        &mut directory,
        &settings,
        &server,
        Some(&stored),
        5_000 + 86_401,
    )
    .await;
    assert_eq!(fifth.mode, ReadMode::Full, "no marker");
}

async fn by_timestamps(
    directory: &mut NoSyncprov,
    settings: &LdapSettings,
    server: &str,
    checkpoint: Option<&str>,
    now: u64,
) -> (crate::connectors::ReadSummary, CollectingSink) {
    let mut sink = CollectingSink::default();
    let summary = reader::Reader {
        directory,
        settings,
        page_size: 100,
        changed_since: None,
        stamps: None,
    }
    .read_by_timestamps(checkpoint, server, now, &mut sink)
    .await
    .expect("read");
    (summary, sink)
}
