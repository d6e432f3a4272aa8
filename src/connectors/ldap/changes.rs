//! Incremental reads (`incremental = true`): a change marker read from the server before
//! each read, stored as the checkpoint, and the next read asking only for entries
//! changed since it.
//!
//! * OpenLDAP: the `contextCSN` of the database's suffix (kept by the syncprov overlay)
//!   and entries with `entryCSN` at or above it. With several providers the lowest
//!   `contextCSN` is kept, so nothing is missed (some entries are read twice).
//! * Active Directory: the root DSE's `highestCommittedUSN` and entries with `uSNChanged`
//!   above it. USNs are per domain controller, so the marker holds the DC's
//!   `invocationId`; another DC (or a restored one) means a full read.
//!
//! Deletions and moves out of the searched bases do not show as changes: every
//! incremental read lists the DNs and ids of all users and groups (no other attributes)
//! and reports them as present, and the mirror removes what was not listed. The same
//! listing resolves member DNs of changed groups. A full read runs at least every
//! `full_read_every`, and whenever the bases, filters or attribute names change.
//!
//! Where OpenLDAP offers content synchronisation (`sync_reader.rs`), the checkpoint also
//! holds its cookies ([`Cookies`]) and those are used instead of the marker. Where an
//! OpenLDAP server (or 389-ds) shows no `contextCSN`, `timestamps.rs` reads by
//! `modifyTimestamp` instead ([`method`] says which).

use serde::{Deserialize, Serialize};

use super::directory::{Directory, LdapReadError, read_entry as read};
use super::dn;
use super::guid;
use super::presets::Preset;
use super::settings::LdapSettings;

/// Where the server's changes stood before a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// What the marker is valid for: the suffix (OpenLDAP) or the DC's invocationId.
    pub server: String,
    /// The lowest contextCSN, or highestCommittedUSN.
    pub value: String,
}

/// How incremental reads go, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// RFC 4533 content sync from stored cookies (`sync_reader.rs`).
    ContentSync,
    /// `(entryCSN>=...)` or `(uSNChanged>=...)` from the server's marker.
    ChangeFilter,
    /// `(modifyTimestamp>=...)` from the highest timestamp read (`timestamps.rs`).
    Timestamps,
    /// None: every read is full.
    Full,
}

/// Which method an incremental read uses: content sync where OpenLDAP has a marker
/// (`contextCSN`, kept by syncprov) and offers the sync control, change filters where
/// there is a marker (OpenLDAP's `contextCSN`, AD's USN), otherwise `modifyTimestamp`
/// for OpenLDAP and 389-ds; Active Directory always shows its USN, so none there.
pub fn method(preset: Preset, marker: bool, sync_offered: bool) -> Method {
    match (preset, marker) {
        (Preset::OpenLdap, true) if sync_offered => Method::ContentSync,
        (_, true) => Method::ChangeFilter,
        (Preset::OpenLdap, false) => Method::Timestamps,
        (Preset::ActiveDirectory, false) => Method::Full,
    }
}

/// The stored checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    /// Set by other methods only (`timestamps.rs`): such a checkpoint means a full read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    server: String,
    /// What was searched ([`searched`]): other bases, filters or attributes mean entries
    /// that did not change may now be in or out, so the next read is full.
    #[serde(default)]
    searched: String,
    marker: String,
    /// When the last full read started (Unix seconds).
    full_at: u64,
    /// With content synchronisation (`sync_reader.rs`): the cookies to poll from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cookies: Option<Cookies>,
}

/// RFC 4533 cookies, one per search (users, groups), hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cookies {
    pub users: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

/// The server's marker now; `None` when it offers none (no syncprov, no contextCSN).
pub async fn read_marker(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
) -> Result<Option<Marker>, LdapReadError> {
    match settings.profile.preset {
        Preset::OpenLdap => {
            let Some(suffix) = suffix(directory, settings).await? else {
                return Ok(None);
            };
            let entry = read(directory, &suffix, &["contextCSN"]).await?;
            let lowest = entry.and_then(|e| e.values("contextCSN").iter().min().cloned());
            Ok(lowest.map(|value| Marker {
                server: suffix,
                value,
            }))
        }
        Preset::ActiveDirectory => {
            let root = read(directory, "", &["highestCommittedUSN", "dsServiceName"]).await?;
            let Some(root) = root else { return Ok(None) };
            let (Some(usn), Some(service)) = (
                root.first("highestCommittedUSN"),
                root.first("dsServiceName"),
            ) else {
                return Ok(None);
            };
            let ntds = read(directory, service, &["invocationId"]).await?;
            let id = ntds.and_then(|e| e.first_bytes("invocationId").and_then(guid::render));
            Ok(id.map(|server| Marker {
                server,
                value: usn.to_owned(),
            }))
        }
    }
}

/// The suffix of the database holding the users' base DN, from the root DSE's
/// `namingContexts`; `None` when none holds it.
pub async fn suffix(
    directory: &mut dyn Directory,
    settings: &LdapSettings,
) -> Result<Option<String>, LdapReadError> {
    let root = read(directory, "", &["namingContexts"]).await?;
    let users = dn::normalize(&settings.users.base_dn).unwrap_or_default();
    let suffix = root
        .iter()
        .flat_map(|r| r.values("namingContexts"))
        .find(|s| {
            dn::normalize(s).is_some_and(|s| users == s || users.ends_with(&format!(",{s}")))
        });
    Ok(suffix.cloned())
}

/// The filter clause of entries changed since `marker` (one from this server).
fn changed_since(preset: Preset, marker: &str) -> Option<String> {
    match preset {
        // A CSN has no filter specials (`*`, `(`, `)`, `\`).
        Preset::OpenLdap => {
            (!marker.contains(['*', '(', ')', '\\'])).then(|| format!("(entryCSN>={marker})"))
        }
        Preset::ActiveDirectory => {
            let usn = marker.trim().parse::<u64>().ok()?;
            Some(format!("(uSNChanged>={})", usn.checked_add(1)?))
        }
    }
}

/// What this read is: the changed-since clause for an incremental read (`None`: a full
/// read), and when the last full read started as of this one.
pub fn plan(
    checkpoint: Option<&str>,
    marker: &Marker,
    settings: &LdapSettings,
    now: u64,
) -> (Option<String>, u64) {
    let stored = checkpoint.and_then(|c| serde_json::from_str::<Checkpoint>(c).ok());
    match stored {
        Some(stored)
            if stored.method.is_none()
                && stored.server == marker.server
                && stored.searched == searched(settings)
                && now.saturating_sub(stored.full_at) < settings.full_read_every.as_secs() =>
        {
            match changed_since(settings.profile.preset, &stored.marker) {
                Some(clause) => (Some(clause), stored.full_at),
                None => (None, now),
            }
        }
        _ => (None, now),
    }
}

/// The cookies to poll from when the stored checkpoint has them and is valid for this
/// read (same server, same searches, last full read younger than `full_read_every`), and
/// when the last full read started as of this one (`now` when this read is full).
pub fn plan_sync(
    checkpoint: Option<&str>,
    marker: &Marker,
    settings: &LdapSettings,
    now: u64,
) -> (Option<Cookies>, u64) {
    let stored = checkpoint.and_then(|c| serde_json::from_str::<Checkpoint>(c).ok());
    match stored {
        Some(Checkpoint {
            method: None,
            server,
            searched: was,
            full_at,
            cookies: Some(cookies),
            ..
        }) if server == marker.server
            && was == searched(settings)
            && now.saturating_sub(full_at) < settings.full_read_every.as_secs() =>
        {
            (Some(cookies), full_at)
        }
        _ => (None, now),
    }
}

/// The checkpoint to store after a complete read with content synchronisation: the
/// marker as [`checkpoint`] has it (so a server that stops offering content sync falls
/// back to change filters), and the cookies.
pub fn checkpoint_with_cookies(
    marker: &Marker,
    settings: &LdapSettings,
    full_at: u64,
    cookies: &Cookies,
) -> String {
    serde_json::json!({
        "server": marker.server,
        "searched": searched(settings),
        "marker": marker.value,
        "full_at": full_at,
        "cookies": cookies,
    })
    .to_string()
}

/// A fingerprint of what a read searches: bases, scopes, filters and the profile.
pub(super) fn searched(settings: &LdapSettings) -> String {
    let what = format!(
        "{:?}|{:?}|{:?}",
        settings.users, settings.groups, settings.profile
    );
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(what.as_bytes()))
}

/// The checkpoint to store after a complete read of `settings`.
pub fn checkpoint(marker: &Marker, settings: &LdapSettings, full_at: u64) -> String {
    serde_json::json!({
        "server": marker.server,
        "searched": searched(settings),
        "marker": marker.value,
        "full_at": full_at,
    })
    .to_string()
}
