//! `/Groups`: create, replace, patch and delete pushed groups. Members are
//! users or groups of the same tenant (nesting is kept in the mirror; the mapping decides
//! whether the target keeps or flattens it). A change of user members is planned for just
//! those users; a change in nesting re-projects the tenant.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use serde_json::Value;

use super::resources::{self, Patch, Patched};
use super::write::{self, Change};
use super::{Call, Reply, v1};
use crate::model::{MemberKind, MemberRef, SourceGroup};
use crate::scim::discovery;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::resource::{PushedMember, group_from_scim};
use crate::store::pushed::{self as store, Put, Stored};

/// Missing member ids named in an error message at most.
const MISSING_SHOWN: usize = 5;

fn parse(
    call: &Call<'_>,
    id: &str,
    mut body: Value,
) -> Result<(SourceGroup, Vec<PushedMember>), ScimError> {
    let body = v1::incoming(call.version, &mut body, discovery::GROUP_SCHEMA);
    resources::sanitize::<SourceGroup>(body)?;
    call.check_resource(body)?;
    Ok(group_from_scim(id, body)?)
}

/// Pushed members as member references: each must be a user or group of the tenant (its
/// kind looked up unless already known), never the group itself; duplicates collapse.
async fn resolve_members(
    tx: &mut crate::db::WriteTx,
    call: &Call<'_>,
    group_id: &str,
    pushed: Vec<PushedMember>,
    known: &HashMap<String, MemberKind>,
) -> Result<Vec<MemberRef>, ScimError> {
    if pushed.iter().any(|m| m.id == group_id) {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "a group cannot be a member of itself",
        ));
    }
    let unknown: Vec<String> = pushed
        .iter()
        .filter(|m| !known.contains_key(&m.id))
        .map(|m| m.id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found = store::member_kinds(tx.conn(), &call.tenant.id, &unknown).await?;
    let missing: Vec<&String> = unknown
        .iter()
        .filter(|id| !found.contains_key(*id))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing
            .iter()
            .take(MISSING_SHOWN)
            .map(|id| format!("{id:?}"))
            .collect();
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!(
                "{} member(s) are not users or groups of this tenant: {}{}",
                missing.len(),
                shown.join(", "),
                if missing.len() > MISSING_SHOWN {
                    ", ..."
                } else {
                    ""
                }
            ),
        ));
    }
    let mut seen = HashSet::with_capacity(pushed.len());
    let mut members = Vec::with_capacity(pushed.len());
    for member in pushed {
        let kind = known
            .get(&member.id)
            .or_else(|| found.get(&member.id))
            .copied()
            .unwrap_or(MemberKind::User);
        let reference = MemberRef {
            kind,
            id: member.id,
        };
        if seen.insert(reference.clone()) {
            members.push(reference);
        }
    }
    Ok(members)
}

/// What writing group `group_id` with `after` members in place of `before` changes for
/// the projection.
fn member_change(group_id: &str, before: &[MemberRef], after: &[MemberRef]) -> Change {
    let old: HashSet<&MemberRef> = before.iter().collect();
    let new: HashSet<&MemberRef> = after.iter().collect();
    let mut change = Change {
        group_ids: vec![group_id.to_string()],
        ..Change::default()
    };
    for member in old.symmetric_difference(&new) {
        match member.kind {
            MemberKind::User => change.user_ids.push(member.id.clone()),
            MemberKind::Group => change.groups_changed = true,
        }
    }
    change
}

fn kinds_of(members: &[MemberRef]) -> HashMap<String, MemberKind> {
    members.iter().map(|m| (m.id.clone(), m.kind)).collect()
}

/// The member counts of a change, in words for the event log.
fn counts(before: &[MemberRef], after: &[MemberRef]) -> String {
    let old: HashSet<&MemberRef> = before.iter().collect();
    let new: HashSet<&MemberRef> = after.iter().collect();
    let added = new.difference(&old).count();
    let removed = old.difference(&new).count();
    match (added, removed) {
        (0, 0) => String::new(),
        (a, 0) => format!(", {a} member(s) added"),
        (0, r) => format!(", {r} member(s) removed"),
        (a, r) => format!(", {a} member(s) added, {r} removed"),
    }
}

pub(super) async fn create(call: &Call<'_>) -> Result<Reply, ScimError> {
    let id = uuid::Uuid::new_v4().to_string();
    let (mut group, pushed) = parse(call, &id, call.json_body()?)?;
    let mut tx = write::begin(call).await?;
    resources::check_unique(&mut tx, call, &group, None).await?;
    group.members = resolve_members(&mut tx, call, &id, pushed, &HashMap::new()).await?;
    let change = member_change(&group.external_id, &[], &group.members);
    let words = format!(
        "create group {}{}",
        group.display_name,
        counts(&[], &group.members)
    );
    let stored = store::put_group(tx.conn(), &call.tenant.id, group, Put::New).await?;
    resources::finish(call, tx, change, StatusCode::CREATED, &stored, &words).await
}

/// Stores `group` (which replaces `existing`) and projects the change.
async fn store_change(
    call: &Call<'_>,
    tx: crate::db::WriteTx,
    existing: Stored<SourceGroup>,
    group: SourceGroup,
    verb: &str,
) -> Result<Reply, ScimError> {
    let change = member_change(&group.external_id, &existing.record.members, &group.members);
    let words = format!(
        "{verb} group {}{}{}",
        group.display_name,
        if group.display_name != existing.record.display_name {
            format!(" (renamed from {})", existing.record.display_name)
        } else {
            String::new()
        },
        counts(&existing.record.members, &group.members)
    );
    resources::store_replacement(call, tx, existing, group, change, &words, store::put_group).await
}

pub(super) async fn replace(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let (mut group, pushed) = parse(call, id, call.json_body()?)?;
    let (mut tx, existing) = resources::begin_on::<SourceGroup>(call, id).await?;
    resources::check_unique(&mut tx, call, &group, Some(&existing.record)).await?;
    let known = kinds_of(&existing.record.members);
    group.members = resolve_members(&mut tx, call, id, pushed, &known).await?;
    store_change(call, tx, existing, group, "replace").await
}

pub(super) async fn patch(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let Patch {
        mut tx,
        existing,
        mut resource,
    } = match resources::patch::<SourceGroup>(call, id).await? {
        Patched::Unchanged(reply) => return Ok(reply),
        Patched::Changed(patch) => patch,
    };
    resources::sanitize::<SourceGroup>(&mut resource)?;
    call.check_resource(&resource)?;
    // Built from the stored group and the client's values: whatever does not read as a
    // group is a value the client sent (`invalidValue`), never the body's syntax.
    let (mut group, pushed) = group_from_scim(id, &resource)
        .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, e.to_string()))?;
    resources::check_unique(&mut tx, call, &group, Some(&existing.record)).await?;
    let known = kinds_of(&existing.record.members);
    group.members = resolve_members(&mut tx, call, id, pushed, &known).await?;
    store_change(call, tx, existing, group, "patch").await
}

pub(super) async fn delete(call: &Call<'_>, id: &str) -> Result<Reply, ScimError> {
    let (mut tx, existing) = resources::begin_on::<SourceGroup>(call, id).await?;
    let mut change = member_change(id, &existing.record.members, &[]);
    // Groups that list this one lose it as a member: nesting changes.
    let parents = store::groups_with_member(tx.conn(), &call.tenant.id, id).await?;
    change.groups_changed |= !parents.is_empty();
    store::remove::<SourceGroup>(tx.conn(), &call.tenant.id, id, parents).await?;
    let applied = write::finish(call, tx, change).await?;
    Ok(Reply::empty(
        StatusCode::NO_CONTENT,
        format!(
            "delete group {}{}",
            existing.record.display_name,
            applied.note()
        ),
    ))
}
