//! Unit tests of the ldap connector: GUIDs, userAccountControl, ranges, DNs, settings
//! messages, and whole reads over an in-memory directory (paging, Active Directory's
//! ranged members past 1,500, nesting with a cycle, members outside the read, incomplete
//! searches), since no Active Directory runs here.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use serde::Deserialize;
use toml::Spanned;

use super::directory::{Directory, Entry, LdapReadError, Page, Scope, SearchRequest};
use super::presets::{Inactive, Preset, Profile};
use super::range::RangeEnd;
use super::settings::{LdapSettings, RawLdapSettings, check};
use super::*;
use crate::connectors::kind::SettingsContext;
use crate::connectors::testing::CollectingSink;
use crate::model::MemberRef;
use crate::spec::problems::{Problems, Source};

mod sync;
mod timestamps;

#[test]
fn object_guids_render_as_microsoft_does() {
    // The bytes of {2b1e4d0a-6c3f-4e1d-9a8b-0c1d2e3f4a5b} as AD stores them.
    let bytes = [
        0x0a, 0x4d, 0x1e, 0x2b, 0x3f, 0x6c, 0x1d, 0x4e, 0x9a, 0x8b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a,
        0x5b,
    ];
    assert_eq!(
        guid::render(&bytes).as_deref(),
        Some("2b1e4d0a-6c3f-4e1d-9a8b-0c1d2e3f4a5b")
    );
    assert_eq!(guid::render(&bytes[..15]), None);
}

#[test]
fn account_disable_is_bit_two_of_user_account_control() {
    assert!(!records::account_disabled("512")); // NORMAL_ACCOUNT
    assert!(records::account_disabled("514")); // NORMAL_ACCOUNT | ACCOUNTDISABLE
    assert!(records::account_disabled("66050")); // ... | DONT_EXPIRE_PASSWORD
    assert!(!records::account_disabled("66048"));
    assert!(records::account_disabled("-2147483646")); // signed 32-bit with bit 2
    assert!(!records::account_disabled("not a number"));
}

#[test]
fn ranges_are_parsed_until_the_star() {
    assert_eq!(
        range::parse("member;range=0-1499", "member"),
        Some(RangeEnd::Next(1500))
    );
    assert_eq!(
        range::parse("Member;Range=1500-*", "member"),
        Some(RangeEnd::Last)
    );
    assert_eq!(range::parse("member", "member"), None);
    assert_eq!(range::parse("memberOf;range=0-10", "member"), None);
    assert_eq!(range::parse("member;range=x-10", "member"), None);
    assert_eq!(range::request("member", 1500), "member;range=1500-*");
}

#[test]
fn dns_are_normalised_for_matching() {
    let a = dn::normalize("CN=Ann Lee , OU=People,dc=Example,DC=com");
    assert_eq!(a.as_deref(), Some("cn=ann lee,ou=people,dc=example,dc=com"));
    assert_eq!(
        dn::normalize("cn = ann  lee,ou=people ,dc=example,dc=com"),
        a
    );
    assert_eq!(
        dn::normalize("2.5.4.3=Ann Lee,OU=People,DC=example,DC=com"),
        a
    );
    assert_eq!(
        dn::normalize("cn=Ann\\20Lee,ou=People,dc=example,dc=com"),
        a
    );
    // Escaped separators stay part of the value.
    assert_eq!(
        dn::normalize("CN=Lee\\, Ann,OU=People").as_deref(),
        Some("cn=lee\\, ann,ou=people")
    );
    assert_eq!(
        dn::normalize("cn=Lee\\2C Ann,ou=people"),
        dn::normalize("CN=Lee\\, Ann,OU=People")
    );
    // Multi-valued RDNs in any order.
    assert_eq!(
        dn::normalize("uid=a+cn=B,dc=x"),
        dn::normalize("CN=b + UID=a,dc=x")
    );
    assert_eq!(dn::normalize("no equals sign"), None);
    assert_eq!(dn::normalize("cn=a,,dc=x"), None);
    assert_eq!(records::member_dn("cn=a,dc=x#'0101'B"), "cn=a,dc=x");
    // The one-pass form and the general one agree.
    for dn in [
        "CN=Ann Lee , OU=People,dc=Example,DC=com",
        "uid=ÄNN,ou=Leute,dc=example,dc=de",
        "cn=a  b\tc,dc=x",
        "cn=,dc=x",
        " cn = x ",
        "oid.2.5.4.3=x,dc=y",
        "2.5.4.11=x",
        "1.2.3=x",
    ] {
        assert_eq!(dn::normalize(dn), dn::normalize_escaped(dn), "{dn}");
    }
}

#[test]
fn paged_results_values_are_read_without_panicking() {
    // SEQUENCE { INTEGER 0, OCTET STRING "ab" }
    assert_eq!(
        client::parse_paged_value(&[0x30, 0x07, 0x02, 0x01, 0x00, 0x04, 0x02, b'a', b'b']),
        Some(b"ab".to_vec())
    );
    assert_eq!(client::parse_paged_value(&[0x30, 0x03, 0x02]), None);
    assert_eq!(client::parse_paged_value(&[]), None);
}

#[test]
fn refused_binds_say_what_to_do() {
    assert!(client::bind_outcome(0, "", "cn=a").is_ok());
    let message = |rc, text| {
        client::bind_outcome(rc, text, "CN=svc,DC=example,DC=com")
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        message(
            8,
            "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking"
        ),
        "the server requires a protected connection for a simple bind \
         (strongerAuthRequired): use StartTLS (`starttls = true`) or an ldaps:// URL"
    );
    assert_eq!(
        message(
            49,
            "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563"
        ),
        "bind as `CN=svc,DC=example,DC=com` refused: invalid credentials \
         (invalidCredentials): check `bind_dn` and `bind_password`; server says: 80090308: \
         LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563"
    );
    assert!(message(13, "").contains("use StartTLS"));
}

// --- settings -------------------------------------------------------------------------

#[derive(Deserialize)]
struct Wrapper {
    ldap: Spanned<RawLdapSettings>,
}

const PASSWORD_ENV: &str = "IDSYNC_TEST_LDAP_UNIT_PASSWORD";

/// Checks `[ldap]` text; the settings or the problems as shown.
fn settings(table: &str) -> Result<LdapSettings, Vec<String>> {
    // SAFETY: set once to the same value by every test that uses it.
    unsafe { std::env::set_var(PASSWORD_ENV, "secret") };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").expect("write");
    let text = format!("[ldap]\n{table}");
    let file = dir.path().join("connectors/dir.toml");
    let source = Source {
        file: &file,
        text: &text,
    };
    let wrapper: Wrapper = toml::from_str(&text).map_err(|e| vec![e.to_string()])?;
    let mut problems = Problems::new(dir.path());
    let context = SettingsContext {
        source: &source,
        base_dir: dir.path(),
        enabled: true,
    };
    check(&wrapper.ldap, &context, &mut problems).ok_or_else(|| {
        problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect()
    })
}

const MINIMAL: &str = "url = \"ldaps://dc1.example.com\"\n\
     bind_dn = \"CN=idsync,OU=Service,DC=example,DC=com\"\n\
     bind_password = { env = \"IDSYNC_TEST_LDAP_UNIT_PASSWORD\" }\n\
     preset = \"active_directory\"\n\
     users = { base_dn = \"OU=Staff,DC=example,DC=com\" }\n";

#[test]
fn a_minimal_active_directory_table() {
    let settings = settings(MINIMAL).expect("valid");
    assert_eq!(settings.page_size, LDAP_DEFAULT_PAGE_SIZE);
    assert_eq!(*settings.profile, Profile::of(Preset::ActiveDirectory));
    assert_eq!(
        settings.users.filter,
        "(&(objectCategory=person)(objectClass=user))"
    );
    assert_eq!(settings.users.scope, Scope::Sub);
    assert!(settings.groups.is_none());
    assert!(!settings.transport.plain && !settings.transport.starttls);
    assert_eq!(
        settings.bind_password.as_ref().map(|p| p.expose()),
        Ok("secret")
    );
}

#[test]
fn overrides_replace_the_preset() {
    let table = MINIMAL.replace("active_directory", "openldap")
        + "inactive_filter = \"(nsAccountLock=TRUE)\"\n\
           groups = { base_dn = \"ou=groups,dc=example,dc=com\", scope = \"one\" }\n\
           [ldap.attributes]\nuser_name = \"mail\"\nmember = [\"uniqueMember\"]\nmember_uid = \"\"\n";
    let settings = settings(&table).expect("valid");
    let profile = &settings.profile;
    assert_eq!(profile.user_name, "mail");
    assert_eq!(profile.member, ["uniqueMember"]);
    assert_eq!(profile.member_uid, None);
    assert_eq!(
        profile.inactive,
        Inactive::Filter("(nsAccountLock=TRUE)".into())
    );
    assert_eq!(profile.id, "entryUUID");
    assert_eq!(settings.groups.expect("groups").scope, Scope::One);
}

#[test]
fn settings_problems_name_their_key() {
    let problems = |table: &str| settings(table).expect_err("problems");
    let at = "connectors/dir.toml";
    assert_eq!(
        problems(&MINIMAL.replace("ldaps://dc1.example.com", "ldap://dc1.example.com")),
        [format!(
            "{at}:2: ldap.url: `ldap://dc1.example.com`: plain ldap:// sends the bind \
             password unencrypted: set `starttls = true` or use ldaps:// (plain ldap is \
             allowed only for loopback hosts, with allow_insecure_ldap = true)"
        )]
    );
    assert_eq!(
        problems(&(MINIMAL.to_owned() + "starttls = true\n")),
        [format!(
            "{at}:7: ldap.starttls: StartTLS applies to ldap:// URLs; an ldaps:// URL is TLS \
             from the start"
        )]
    );
    assert_eq!(
        problems(&MINIMAL.replace("active_directory", "novell")),
        [format!(
            "{at}:5: ldap.preset: unknown preset `novell` (expected \"active_directory\" or \
             \"openldap\")"
        )]
    );
    let found = problems(&(MINIMAL.to_owned() + "page_size = 5000\nca_file = \"ca.pem\"\n"));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!("{at}:8: ldap.ca_file: ")),
        "{found:?}"
    );
    assert!(
        found[0].ends_with("ca.pem holds no PEM certificate"),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        format!(
            "{at}:7: ldap.page_size: 5000 is out of range (1-1000, Active Directory's MaxPageSize)"
        )
    );
    assert_eq!(
        problems(&MINIMAL.replace(
            "users = { base_dn = \"OU=Staff,DC=example,DC=com\" }",
            "users = { base_dn = \"OU=Staff\", filter = \"objectClass=user\", scope = \"deep\" }"
        )),
        [
            format!("{at}:6: ldap.users.scope: unknown scope `deep` (expected \"sub\" or \"one\")"),
            format!(
                "{at}:6: ldap.users.filter: `objectClass=user` is not an LDAP filter (RFC 4515), such as `(uid=*)`"
            ),
        ]
    );
    let found = problems(&(MINIMAL.to_owned() + "incremental = true\nfull_read_every = \"0s\"\n"));
    assert_eq!(
        found,
        [format!(
            "{at}:8: ldap.full_read_every: must be longer than 0s"
        )]
    );
    let incremental =
        settings(&(MINIMAL.to_owned() + "incremental = true\nfull_read_every = \"12h\"\n"))
            .expect("valid");
    assert!(incremental.incremental);
    assert_eq!(incremental.full_read_every.as_secs(), 12 * 3600);
    let plain_loopback = MINIMAL.replace("ldaps://dc1.example.com", "ldap://127.0.0.1:3389")
        + "allow_insecure_ldap = true\n";
    assert!(settings(&plain_loopback).expect("valid").transport.plain);
}

// --- reads over an in-memory directory --------------------------------------------------

/// An in-memory directory: users and groups told apart by the search filter, paged at
/// most `max_page` entries, `member` values served in ranges of `max_range` (AD's
/// MaxValRange) once a group has more.
struct Memory {
    users: Vec<Entry>,
    groups: Vec<Entry>,
    max_page: usize,
    max_range: usize,
    /// Fails the n-th paged request (0-based) with this error.
    fail: Option<(usize, LdapReadError)>,
    /// Refuses pages above this size as OpenLDAP does (adminLimitExceeded).
    refuse_above: Option<u32>,
    paged_requests: usize,
    range_requests: usize,
}

impl Memory {
    fn new(users: Vec<Entry>, groups: Vec<Entry>) -> Memory {
        Memory {
            users,
            groups,
            max_page: 1000,
            max_range: 1500,
            fail: None,
            refuse_above: None,
            paged_requests: 0,
            range_requests: 0,
        }
    }

    /// `entry` as the server returns it: `member` in its first range when long.
    fn served(&self, entry: &Entry, attrs: &[String]) -> Entry {
        let mut out = entry.clone();
        if attrs.iter().all(|a| a != "*") {
            out.text
                .retain(|k, _| attrs.iter().any(|a| a.eq_ignore_ascii_case(k)));
            out.binary
                .retain(|k, _| attrs.iter().any(|a| a.eq_ignore_ascii_case(k)));
        }
        if let Some(members) = out.text.remove("member") {
            if members.len() > self.max_range {
                let first = members[..self.max_range].to_vec();
                out.text
                    .insert(format!("member;range=0-{}", self.max_range - 1), first);
            } else {
                out.text.insert("member".into(), members);
            }
        }
        out
    }
}

#[async_trait]
impl Directory for Memory {
    async fn page(
        &mut self,
        request: &SearchRequest,
        paging: Option<(u32, Vec<u8>)>,
    ) -> Result<Page, LdapReadError> {
        if request.scope == Scope::Base {
            self.range_requests += 1;
            let entry =
                self.groups
                    .iter()
                    .find(|g| g.dn == request.base)
                    .ok_or(LdapReadError::Result {
                        rc: 32,
                        text: String::new(),
                    })?;
            let attr = &request.attrs[0];
            let start: usize = attr
                .split("range=")
                .nth(1)
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let all = entry.values("member");
            let end = (start + self.max_range).min(all.len());
            let name = if end == all.len() {
                format!("member;range={start}-*")
            } else {
                format!("member;range={start}-{}", end - 1)
            };
            let mut out = Entry {
                dn: entry.dn.clone(),
                ..Entry::default()
            };
            out.text.insert(name, all[start..end].to_vec());
            return Ok(Page {
                entries: vec![out],
                ..Page::default()
            });
        }
        let (size, cookie) = paging.expect("searches are paged");
        let n = self.paged_requests;
        self.paged_requests += 1;
        if let Some((at, error)) = &self.fail
            && *at == n
        {
            return Err(error.clone());
        }
        if self.refuse_above.is_some_and(|limit| size > limit) {
            return Err(LdapReadError::Result {
                rc: 11,
                text: "illegal pagedResults page size".into(),
            });
        }
        let source = if request.filter.contains("group") {
            &self.groups
        } else {
            &self.users
        };
        let offset: usize = String::from_utf8(cookie)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let size = (size as usize).min(self.max_page);
        let end = (offset + size).min(source.len());
        let entries = source[offset..end]
            .iter()
            .map(|e| self.served(e, &request.attrs))
            .collect();
        Ok(Page {
            entries,
            references: 0,
            cookie: (end < source.len()).then(|| end.to_string().into_bytes()),
        })
    }
}

fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
    let mut text = HashMap::new();
    for (name, values) in attrs {
        text.insert(
            (*name).to_owned(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        );
    }
    Entry {
        dn: dn.to_owned(),
        text,
        binary: HashMap::new(),
    }
}

fn guid_bytes(n: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; 16];
    bytes[0] = n;
    bytes[15] = 0xff;
    bytes
}

fn ad_user(n: u32, uac: &str) -> Entry {
    let mut e = entry(
        &format!("CN=User {n},OU=Staff,DC=example,DC=com"),
        &[
            ("sAMAccountName", &[&format!("user{n}")]),
            ("userAccountControl", &[uac]),
            ("mail", &[&format!("user{n}@example.com")]),
        ],
    );
    e.binary
        .insert("objectGUID".into(), vec![guid_bytes((n % 250) as u8)]);
    e.text
        .insert("objectSid".into(), vec![format!("S-1-5-21-{n}")]);
    e
}

fn ad_settings(page_size: u32) -> LdapSettings {
    let mut settings = settings(
        &(MINIMAL.to_owned() + "groups = { base_dn = \"OU=Groups,DC=example,DC=com\" }\n"),
    )
    .expect("valid");
    settings.page_size = page_size;
    settings
}

async fn read(
    memory: &mut Memory,
    settings: &LdapSettings,
) -> Result<CollectingSink, ConnectorError> {
    let mut sink = CollectingSink::default();
    reader::Reader {
        directory: memory,
        settings,
        page_size: settings.page_size,
        changed_since: None,
        stamps: None,
    }
    .read(&mut sink)
    .await?;
    Ok(sink)
}

#[tokio::test]
async fn active_directory_users_groups_and_ranged_members() {
    // 240 distinct GUIDs; 2,000 members in one group go past MaxValRange.
    let users: Vec<Entry> = (0..240)
        .map(|n| ad_user(n, if n == 7 { "514" } else { "512" }))
        .collect();
    let member_dns: Vec<String> = users
        .iter()
        .map(|u| u.dn.to_uppercase().replace(",", " , "))
        .cycle()
        .take(240)
        .chain((0..1760).map(|n| format!("CN=Gone {n},OU=Elsewhere,DC=example,DC=com")))
        .collect();
    let refs: Vec<&str> = member_dns.iter().map(String::as_str).collect();
    let mut big = entry(
        "CN=All,OU=Groups,DC=example,DC=com",
        &[("cn", &["All"]), ("member", &refs)],
    );
    big.binary
        .insert("objectGUID".into(), vec![guid_bytes(251)]);
    let mut memory = Memory::new(users, vec![big]);
    let sink = read(&mut memory, &ad_settings(100)).await.expect("read");
    let users = sink.users();
    assert_eq!(users.len(), 240);
    assert_eq!(
        memory.paged_requests,
        3 + 1 + 1,
        "240 users a 100, then two group passes"
    );
    assert_eq!(users[0].external_id, "00000000-0000-0000-0000-0000000000ff");
    assert_eq!(users[0].user_name, "user0");
    assert_eq!(
        users[0].attributes["objectGUID"],
        serde_json::json!("00000000-0000-0000-0000-0000000000ff")
    );
    assert!(!users[7].active && users[8].active);
    let groups = sink.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].members.len(),
        240,
        "the 1,760 DNs outside the read are left out"
    );
    assert_eq!(memory.range_requests, 1, "0-1499, then 1500-*");
    assert!(
        groups[0]
            .attributes
            .keys()
            .all(|k| !k.starts_with("member"))
    );
}

fn ol_user(uid: &str, locked: bool) -> Entry {
    let uid_ref = [uid];
    let uuid = format!("uuid-{uid}");
    let uuid_ref = [uuid.as_str()];
    let mut attrs: Vec<(&str, &[&str])> = vec![
        ("uid", &uid_ref),
        ("cn", &uid_ref),
        ("entryUUID", &uuid_ref),
    ];
    if locked {
        attrs.push(("pwdAccountLockedTime", &["000001010000Z"]));
    }
    entry(&format!("uid={uid},ou=people,dc=example,dc=com"), &attrs)
}

fn ol_group(cn: &str, attrs: &[(&str, &[&str])]) -> Entry {
    let uuid = format!("uuid-{cn}");
    let cn_ref = [cn];
    let uuid_ref = [uuid.as_str()];
    let mut all: Vec<(&str, &[&str])> = vec![("cn", &cn_ref), ("entryUUID", &uuid_ref)];
    all.extend_from_slice(attrs);
    entry(&format!("cn={cn},ou=groups,dc=example,dc=com"), &all)
}

#[tokio::test]
async fn openldap_nesting_with_a_cycle_posix_groups_and_locked_users() {
    let users = vec![ol_user("ann", false), ol_user("bob", true)];
    let groups = vec![
        ol_group(
            "a",
            &[(
                "member",
                &[
                    "UID=ann, OU=People,DC=example,DC=com",
                    "cn=b,ou=groups,dc=example,dc=com",
                ],
            )],
        ),
        ol_group(
            "b",
            &[(
                "uniqueMember",
                &["cn=A,ou=Groups,dc=example,dc=com#'0101'B"],
            )],
        ),
        ol_group("p", &[("memberUid", &["BOB", "carol"])]),
    ];
    let mut settings = ad_settings(1);
    *settings.profile = Profile::of(Preset::OpenLdap);
    let mut memory = Memory::new(users, groups);
    let sink = read(&mut memory, &settings).await.expect("read");
    let users = sink.users();
    assert_eq!(
        users
            .iter()
            .map(|u| (u.external_id.as_str(), u.active))
            .collect::<Vec<_>>(),
        [("uuid-ann", true), ("uuid-bob", false)]
    );
    let members: Vec<(String, Vec<MemberRef>)> = sink
        .groups()
        .into_iter()
        .map(|g| (g.display_name, g.members))
        .collect();
    assert_eq!(
        members,
        [
            (
                "a".into(),
                vec![MemberRef::user("uuid-ann"), MemberRef::group("uuid-b")]
            ),
            ("b".into(), vec![MemberRef::group("uuid-a")]),
            ("p".into(), vec![MemberRef::user("uuid-bob")]),
        ]
    );
}

#[tokio::test]
async fn an_incomplete_search_fails_the_read() {
    for (at, rc) in [(0, 4), (1, 3), (4, 10)] {
        let users = (0..3).map(|n| ad_user(n, "512")).collect();
        let mut memory = Memory::new(users, Vec::new());
        memory.fail = Some((
            at,
            LdapReadError::Result {
                rc,
                text: String::new(),
            },
        ));
        let Err(err) = read(&mut memory, &ad_settings(1)).await else {
            panic!("an incomplete read");
        };
        let text = err.to_string();
        assert!(text.starts_with("ldap connector: searching "), "{text}");
        let expected = match rc {
            4 => "sizeLimitExceeded",
            3 => "timeLimitExceeded",
            _ => "referrals are not followed",
        };
        assert!(text.contains(expected), "{text}");
    }
    let mut memory = Memory::new(vec![ad_user(1, "512")], Vec::new());
    memory.fail = Some((0, LdapReadError::Transport("connection reset".into())));
    let Err(err) = read(&mut memory, &ad_settings(10)).await else {
        panic!("a dropped connection");
    };
    assert_eq!(
        err.to_string(),
        "ldap connector: searching users under OU=Staff,DC=example,DC=com failed: the \
         connection failed: connection reset"
    );
}

#[tokio::test]
async fn pages_shrink_when_the_server_refuses_their_size() {
    let users = (0..250).map(|n| ad_user(n, "512")).collect();
    let mut memory = Memory::new(users, Vec::new());
    memory.refuse_above = Some(100);
    let sink = read(&mut memory, &ad_settings(500)).await.expect("read");
    assert_eq!(sink.users().len(), 250);
    // 500 and 250 refused, then 125 is too many too, then pages of 62: 5 pages; the
    // group passes start at 62.
    assert_eq!(memory.paged_requests, 3 + 5 + 1 + 1);
}

#[tokio::test]
async fn diagnose_checks_paging_limits_and_operational_attributes() {
    struct Root(Memory, bool);
    #[async_trait]
    impl Directory for Root {
        async fn page(
            &mut self,
            request: &SearchRequest,
            paging: Option<(u32, Vec<u8>)>,
        ) -> Result<Page, LdapReadError> {
            if request.scope != Scope::Base {
                return self.0.page(request, paging).await;
            }
            let mut e = entry(&request.base, &[]);
            if request.base.is_empty() && self.1 {
                e.text.insert(
                    "supportedControl".into(),
                    vec![client::PAGED_RESULTS_OID.into()],
                );
            }
            Ok(Page {
                entries: vec![e],
                ..Page::default()
            })
        }
    }
    let settings = ad_settings(100);
    let mut checks = Vec::new();
    let mut root = Root(Memory::new(vec![ad_user(1, "512")], Vec::new()), true);
    assert!(diagnose::steps(&mut root, &settings, &mut checks).await);
    let names: Vec<&str> = checks.iter().map(|c| c.check).collect();
    assert_eq!(
        names,
        [
            "paged results",
            "server limits",
            "users base DN",
            "groups base DN",
            "list users",
            "list groups",
            "list group members",
            "operational attributes"
        ]
    );
    let mut missing_id = ad_user(2, "512");
    missing_id.binary.clear();
    let mut checks = Vec::new();
    let mut root = Root(Memory::new(vec![missing_id], Vec::new()), true);
    assert!(!diagnose::steps(&mut root, &settings, &mut checks).await);
    let last = checks.last().expect("a step");
    assert_eq!((last.check, last.ok), ("operational attributes", false));
    let mut checks = Vec::new();
    let mut root = Root(Memory::new(Vec::new(), Vec::new()), false);
    assert!(!diagnose::steps(&mut root, &settings, &mut checks).await);
    assert_eq!(checks[0].check, "paged results");
    assert!(!checks[0].ok);
}

#[test]
fn the_bind_password_stays_out_of_debug_output() {
    let settings = ad_settings(10);
    assert!(!format!("{settings:?}").contains("secret"));
    let _ = Path::new(".");
}

#[tokio::test]
async fn change_markers_and_the_incremental_plan() {
    /// A root DSE and an NTDS Settings object, as a domain controller has them.
    struct Dc;
    #[async_trait]
    impl Directory for Dc {
        async fn page(
            &mut self,
            request: &SearchRequest,
            _: Option<(u32, Vec<u8>)>,
        ) -> Result<Page, LdapReadError> {
            let mut e = entry(&request.base, &[]);
            if request.base.is_empty() {
                e = entry(
                    "",
                    &[
                        ("highestCommittedUSN", &["12345"]),
                        ("dsServiceName", &["CN=NTDS Settings,CN=DC1"]),
                    ],
                );
            } else {
                e.binary.insert("invocationId".into(), vec![guid_bytes(7)]);
            }
            Ok(Page {
                entries: vec![e],
                ..Page::default()
            })
        }
    }
    let mut settings = ad_settings(100);
    settings.incremental = true;
    let marker = changes::read_marker(&mut Dc, &settings)
        .await
        .expect("marker")
        .expect("a DC has one");
    assert_eq!(marker.value, "12345");
    assert_eq!(marker.server, "00000007-0000-0000-0000-0000000000ff");
    let stored = changes::checkpoint(&marker, &settings, 1_000);
    // Within full_read_every: the changes since the stored USN.
    assert_eq!(
        changes::plan(Some(&stored), &marker, &settings, 2_000),
        (Some("(uSNChanged>=12346)".to_owned()), 1_000)
    );
    // A day later, another DC, no checkpoint or a broken one: a full read.
    assert_eq!(
        changes::plan(Some(&stored), &marker, &settings, 1_000 + 86_400),
        (None, 87_400)
    );
    let other = changes::Marker {
        server: "another-dc".into(),
        ..marker.clone()
    };
    assert_eq!(
        changes::plan(Some(&stored), &other, &settings, 2_000).0,
        None
    );
    assert_eq!(changes::plan(None, &marker, &settings, 2_000).0, None);
    assert_eq!(changes::plan(Some("{"), &marker, &settings, 2_000).0, None);
    // Another filter: entries that did not change may now match, so a full read.
    let mut narrower = settings.clone();
    narrower.users.filter = "(&(objectClass=user)(department=IT))".into();
    assert_eq!(
        changes::plan(Some(&stored), &marker, &narrower, 2_000).0,
        None
    );
}
