//! `idsync check --connect` for an LDAP directory: connect, bind, the root DSE's paging
//! support, the server's limits where the bind account may read them, the base DNs, one
//! user and one group, and the preset's operational attributes on that user. Stops at the
//! first failure.

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::client::{PAGED_RESULTS_OID, Session};
use super::directory::{Directory, Entry, SearchRequest, read_entry};
use super::presets::Preset;
use super::settings::{LdapSettings, SearchBase};
use crate::connectors::Diagnosis;
use crate::connectors::probe::{ListingProbe, ProbeListing, probe_listings};

/// Every step, through a new session.
pub(super) async fn run(settings: &LdapSettings) -> Vec<Diagnosis> {
    let mut checks = Vec::new();
    let transport = &settings.transport;
    let how = if transport.starttls {
        "StartTLS"
    } else if transport.plain {
        "plain, unencrypted"
    } else {
        "TLS"
    };
    let mut session = match Session::connect(settings).await {
        Ok(session) => session,
        Err(err) => {
            checks.push(Diagnosis::failed("connect", err.to_string()));
            return checks;
        }
    };
    checks.push(Diagnosis::ok(
        "connect",
        format!("{} ({how})", transport.url),
    ));
    if let Err(err) = session.bind(settings).await {
        checks.push(Diagnosis::failed("bind", err.to_string()));
        return checks;
    }
    checks.push(Diagnosis::ok("bind", format!("as {}", settings.bind_dn)));
    steps(&mut session, settings, &mut checks).await;
    session.close().await;
    checks
}

/// The steps after the bind; whether every one passed.
pub(super) async fn steps(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
    checks: &mut Vec<Diagnosis>,
) -> bool {
    let root = match read_base(directory, "", ROOT_DSE_ATTRIBUTES).await {
        Ok(Some(root)) => root,
        Ok(None) => Entry::default(),
        Err(err) => {
            checks.push(Diagnosis::failed("root DSE", err));
            return false;
        }
    };
    let paging = root
        .values("supportedControl")
        .iter()
        .any(|oid| oid == PAGED_RESULTS_OID);
    if !paging {
        checks.push(Diagnosis::failed(
            "paged results",
            "the root DSE does not list the paged results control (1.2.840.113556.1.4.319) \
             in supportedControl: a directory larger than the server's size limit cannot \
             be read whole",
        ));
        return false;
    }
    checks.push(Diagnosis::ok(
        "paged results",
        format!("supported; pages of {}", settings.page_size),
    ));
    if !server_limits(directory, settings, &root, checks).await {
        return false;
    }
    let mut bases = vec![("users base DN", &settings.users)];
    bases.extend(settings.groups.as_ref().map(|g| ("groups base DN", g)));
    for (check, base) in &bases {
        match read_base(directory, &base.base_dn, &["1.1"]).await {
            Ok(Some(_)) => checks.push(Diagnosis::ok(check, base.base_dn.clone())),
            Ok(None) => {
                checks.push(Diagnosis::failed(
                    check,
                    format!("{}: not found", base.base_dn),
                ));
                return false;
            }
            Err(err) => {
                checks.push(Diagnosis::failed(check, format!("{}: {err}", base.base_dn)));
                return false;
            }
        }
    }
    if !listings(directory, settings, checks).await {
        return false;
    }
    let profile = &settings.profile;
    let mut user_attrs = vec![profile.user_name.clone()];
    user_attrs.extend(profile.operational().iter().map(|a| (*a).to_owned()));
    let user = match first_entry(directory, &settings.users, user_attrs).await {
        Ok(user) => user,
        Err(err) => {
            checks.push(Diagnosis::failed("operational attributes", err));
            return false;
        }
    };
    let Some(user) = user else {
        checks.push(Diagnosis::ok(
            "operational attributes",
            "no user matched the filter, nothing to check",
        ));
        return true;
    };
    if !user.has(&profile.id) {
        checks.push(Diagnosis::failed(
            "operational attributes",
            format!(
                "`{}` of {} is not readable: give the bind account read access to it \
                 (an operational attribute is returned only when asked for by name)",
                profile.id, user.dn
            ),
        ));
        return false;
    }
    checks.push(Diagnosis::ok(
        "operational attributes",
        format!("`{}` readable", profile.operational().join("`, `")),
    ));
    true
}

/// The listing steps every kind has (`connectors::probe`): one user, one group, that
/// group's member attributes.
async fn listings(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
    checks: &mut Vec<Diagnosis>,
) -> bool {
    let probe = Listings {
        directory: Mutex::new(directory),
        settings,
    };
    if settings.groups.is_some() {
        return probe_listings(&probe, checks).await;
    }
    match probe.probe_listing(ProbeListing::Users).await {
        Ok(_) => checks.push(Diagnosis::ok(ProbeListing::Users.check(), "permitted")),
        Err(failed) => {
            checks.push(failed);
            return false;
        }
    }
    checks.push(Diagnosis::ok(
        ProbeListing::Groups.check(),
        "not configured ([ldap.groups]): no groups are read",
    ));
    true
}

/// One session behind the probe's shared reference.
struct Listings<'a> {
    directory: Mutex<&'a mut dyn Directory>,
    settings: &'a LdapSettings,
}

#[async_trait]
impl ListingProbe for Listings<'_> {
    /// Users and groups: one entry of the search (a group's DN is the id the members
    /// step reads); members: the group's member attributes.
    async fn probe_listing(&self, listing: ProbeListing<'_>) -> Result<Option<String>, Diagnosis> {
        let mut directory = self.directory.lock().await;
        let one = vec!["1.1".to_owned()];
        let read = match (listing, &self.settings.groups) {
            (ProbeListing::Users, _) => first_entry(*directory, &self.settings.users, one).await,
            (ProbeListing::Groups, Some(groups)) => first_entry(*directory, groups, one).await,
            (ProbeListing::Groups, None) => Ok(None),
            (ProbeListing::Members(dn), _) => {
                let profile = &self.settings.profile;
                let attrs: Vec<&str> = profile
                    .member
                    .iter()
                    .chain(&profile.member_uid)
                    .map(String::as_str)
                    .collect();
                read_base(*directory, dn, &attrs).await
            }
        };
        read.map(|entry| entry.map(|e| e.dn)).map_err(|err| {
            Diagnosis::failed(
                listing.check(),
                format!("{err}: give the bind account read access there"),
            )
        })
    }

    fn no_group_note(&self) -> Option<&'static str> {
        Some("no group matched the filter, nothing to check")
    }
}

const ROOT_DSE_ATTRIBUTES: &[&str] = &[
    "supportedControl",
    "supportedLDAPVersion",
    "namingContexts",
    "configurationNamingContext",
    "vendorName",
    "vendorVersion",
];

/// AD's query policy: MaxPageSize and MaxValRange, where readable, against `page_size`.
async fn server_limits(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
    root: &Entry,
    checks: &mut Vec<Diagnosis>,
) -> bool {
    let not_readable = || {
        Diagnosis::ok(
            "server limits",
            format!(
                "not readable by the bind account (AD: lDAPAdminLimits of the Default Query \
                 Policy; OpenLDAP: the `limits` of its database in cn=config); pages of {} \
                 stay within them if the server allows that many entries a page",
                settings.page_size
            ),
        )
    };
    let policy = match (
        settings.profile.preset,
        root.first("configurationNamingContext"),
    ) {
        (Preset::ActiveDirectory, Some(config)) => format!(
            "CN=Default Query Policy,CN=Query-Policies,CN=Directory Service,CN=Windows NT,\
             CN=Services,{config}"
        ),
        _ => {
            checks.push(not_readable());
            return true;
        }
    };
    let limits = match read_base(directory, &policy, &["lDAPAdminLimits"]).await {
        Ok(Some(entry)) => entry.values("lDAPAdminLimits").to_vec(),
        _ => Vec::new(),
    };
    let limit = |name: &str| {
        limits.iter().find_map(|l| {
            let (key, value) = l.split_once('=')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().parse::<u32>().ok())?
        })
    };
    let Some(max_page) = limit("MaxPageSize") else {
        checks.push(not_readable());
        return true;
    };
    let range = limit("MaxValRange").map_or("default".to_owned(), |r| r.to_string());
    if settings.page_size > max_page {
        checks.push(Diagnosis::failed(
            "server limits",
            format!(
                "page_size {} is above the server's MaxPageSize {max_page}: lower it",
                settings.page_size
            ),
        ));
        return false;
    }
    checks.push(Diagnosis::ok(
        "server limits",
        format!("MaxPageSize {max_page}, MaxValRange {range}"),
    ));
    true
}

/// The entry at `dn`; `None` when it does not exist.
async fn read_base(
    directory: &mut dyn Directory,
    dn: &str,
    attrs: &[&str],
) -> Result<Option<Entry>, String> {
    read_entry(directory, dn, attrs)
        .await
        .map_err(|err| err.to_string())
}

/// The first entry of a one-entry page of `base`'s search.
async fn first_entry(
    directory: &mut dyn Directory,
    base: &SearchBase,
    attrs: Vec<String>,
) -> Result<Option<Entry>, String> {
    let request = SearchRequest {
        base: base.base_dn.clone(),
        scope: base.scope,
        filter: base.filter.clone(),
        attrs,
    };
    directory
        .page(&request, Some((1, Vec::new())))
        .await
        .map(|page| page.entries.into_iter().next())
        .map_err(|err| err.to_string())
}
