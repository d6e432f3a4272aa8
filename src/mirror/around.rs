//! The groups a plan over a few changed users needs, read through the member index
//! (`mirror_values`) instead of loading every group of the connector: the groups listing
//! any of those users, the groups named by the caller (the target groups the users are in
//! now), and every group above those (groups that list them as members, up the nesting),
//! so that the users' effective groups are complete. O(the users' groups), not O(groups).

use std::collections::BTreeSet;

use sqlx::Row;

use crate::db::{Context, DbError, select_in};
use crate::model::SourceGroup;

const CTX: &str = "reading the changed users' groups";

/// The mirrored groups of `connector` around `member_ids` (see the module doc), plus
/// `also` and their ancestors, in external id order (as `load_groups` gives them).
pub async fn load_groups_around(
    conn: &mut sqlx::AnyConnection,
    connector: &str,
    member_ids: &[String],
    also: &[String],
) -> Result<Vec<SourceGroup>, DbError> {
    let mut wanted: BTreeSet<String> = also.iter().cloned().collect();
    let mut frontier: Vec<String> = member_ids.iter().chain(also).cloned().collect();
    // One query per nesting level; `wanted` stops cycles.
    while !frontier.is_empty() {
        let rows = select_in(
            conn,
            "SELECT DISTINCT external_id FROM mirror_values",
            Some((
                "resource = 'group' AND attr = 'members' AND connector = ",
                connector,
            )),
            "value_key",
            &frontier,
            CTX,
        )
        .await?;
        frontier.clear();
        for row in rows {
            let parent: String = row.try_get(0).context(CTX)?;
            if wanted.insert(parent.clone()) {
                frontier.push(parent);
            }
        }
    }
    let ids: Vec<String> = wanted.into_iter().collect();
    let rows = select_in(
        conn,
        "SELECT data FROM mirror_groups",
        Some(("connector = ", connector)),
        "external_id",
        &ids,
        CTX,
    )
    .await?;
    let mut groups = Vec::with_capacity(rows.len());
    for row in rows {
        let data: &str = row.try_get(0).context(CTX)?;
        let group: SourceGroup = serde_json::from_str(data).map_err(|e| DbError::Corrupt {
            context: "decoding a mirror record",
            message: e.to_string(),
        })?;
        groups.push(group);
    }
    groups.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    Ok(groups)
}
