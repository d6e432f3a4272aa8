//! Keycloak's admin events as a change feed: which users and groups an incremental read
//! must read again.
//!
//! A realm records admin events when "Save admin events" is on (`adminEventsEnabled` in
//! `GET /admin/realms/{realm}/events/config`). `GET /admin/realms/{realm}/admin-events`
//! lists them, filtered by `resourceTypes` and `dateFrom` (epoch milliseconds, inclusive,
//! from Keycloak 26.2; older servers take only `yyyy-MM-dd` and answer 400) and ordered
//! by `direction=asc` (26.2), paged with `first`/`max`
//! (<https://www.keycloak.org/docs-api/latest/rest-api/index.html#_realms_admin>). Each
//! event names its resource by `resourcePath`:
//!
//! | event | resourcePath | read again |
//! | --- | --- | --- |
//! | USER CREATE/UPDATE/DELETE/ACTION | `users/{id}`, `users/{id}/...` | the user (404: removed) |
//! | USER CREATE | `users/{id}` | also the user's groups (groups given at creation have no event) |
//! | GROUP_MEMBERSHIP CREATE/DELETE | `users/{user}/groups/{group}` | the group's members |
//! | GROUP CREATE/UPDATE | `groups/{id}` (a new top-level group, a rename) | the group |
//! | GROUP DELETE | `groups/{id}` (its subgroups go with it, unannounced) | the group tree |
//! | GROUP CREATE/UPDATE | `groups/{parent}/children` (a subgroup made or moved) | the group tree |
//! | GROUP UPDATE | `groups` (a group moved to the top level) | the group tree |
//!
//! Reading a user or group again, rather than trusting the event's representation, makes
//! the result the source's present state whatever order the events came in, and needs no
//! "include representation" setting. Changes to the group tree are rare and their events
//! do not name every group they touch (a move names the new parent, not the old one), so
//! they make the run read every group.

use std::collections::BTreeSet;

use serde_json::Value;

/// The resource types a read asks for.
pub(super) const RESOURCE_TYPES: [&str; 3] = ["USER", "GROUP", "GROUP_MEMBERSHIP"];

/// What the events of one read ask to read again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Changes {
    /// Users created, changed or deleted.
    pub users: BTreeSet<String>,
    /// Users created: their groups are read too.
    pub created: BTreeSet<String>,
    /// Groups whose own record or user members changed.
    pub groups: BTreeSet<String>,
    /// The group tree changed: every group is read.
    pub tree: bool,
    /// Events seen.
    pub events: usize,
}

impl Changes {
    /// Takes one `AdminEventRepresentation` into account. Events of other resource types,
    /// failed operations and paths of unknown shape are ignored.
    pub fn note(&mut self, event: &Value) {
        self.events += 1;
        if event.get("error").is_some_and(|e| !e.is_null()) {
            return;
        }
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
        let (resource, operation, path) = (
            text("resourceType"),
            text("operationType"),
            text("resourcePath"),
        );
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (resource, segments.as_slice()) {
            ("GROUP_MEMBERSHIP", ["users", _, "groups", group]) if !group.is_empty() => {
                self.groups.insert((*group).to_string());
            }
            ("USER", ["users", user, ..]) if !user.is_empty() => {
                self.users.insert((*user).to_string());
                if operation == "CREATE" {
                    self.created.insert((*user).to_string());
                }
            }
            ("GROUP", ["groups", group]) if !group.is_empty() && operation != "DELETE" => {
                self.groups.insert((*group).to_string());
            }
            ("GROUP", ["groups", ..]) => self.tree = true,
            _ => {}
        }
    }
}

/// `adminEventsEnabled` of a `RealmEventsConfigRepresentation`.
pub(super) fn admin_events_enabled(config: &Value) -> bool {
    config
        .get("adminEventsEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(resource: &str, operation: &str, path: &str) -> Value {
        json!({"time": 1_700_000_000_000u64, "realmId": "r", "operationType": operation,
            "resourceType": resource, "resourcePath": path})
    }

    fn changes(events: &[Value]) -> Changes {
        let mut changes = Changes::default();
        for e in events {
            changes.note(e);
        }
        changes
    }

    #[test]
    fn users_and_memberships_name_what_to_read_again() {
        let seen = changes(&[
            event("USER", "CREATE", "users/u1"),
            event("USER", "UPDATE", "users/u2"),
            event("USER", "DELETE", "users/u3"),
            event("USER", "ACTION", "users/u4/reset-password"),
            event("GROUP_MEMBERSHIP", "CREATE", "users/u5/groups/g1"),
            event("GROUP_MEMBERSHIP", "DELETE", "users/u6/groups/g2"),
            event("GROUP", "UPDATE", "groups/g3"),
            event("GROUP", "CREATE", "groups/g4"),
        ]);
        assert_eq!(
            seen.users.iter().map(String::as_str).collect::<Vec<_>>(),
            ["u1", "u2", "u3", "u4"]
        );
        assert_eq!(
            seen.groups.iter().map(String::as_str).collect::<Vec<_>>(),
            ["g1", "g2", "g3", "g4"]
        );
        assert_eq!(seen.created.iter().collect::<Vec<_>>(), ["u1"]);
        assert!(!seen.tree);
        assert_eq!(seen.events, 8);
    }

    #[test]
    fn changes_to_the_group_tree_read_every_group() {
        for (operation, path) in [
            ("DELETE", "groups/g1"),
            ("CREATE", "groups/g1/children"),
            ("UPDATE", "groups/g1/children"),
            ("UPDATE", "groups"),
        ] {
            assert!(
                changes(&[event("GROUP", operation, path)]).tree,
                "{operation} {path}"
            );
        }
    }

    #[test]
    fn other_events_change_nothing() {
        let mut failed = event("USER", "UPDATE", "users/u1");
        failed["error"] = json!("unknown_error");
        let seen = changes(&[
            failed,
            event(
                "REALM_ROLE_MAPPING",
                "CREATE",
                "users/u1/role-mappings/realm",
            ),
            event("CLIENT", "UPDATE", "clients/c1"),
            event("USER", "UPDATE", "users/"),
            event("GROUP_MEMBERSHIP", "CREATE", "users/u1"),
        ]);
        assert_eq!(
            seen,
            Changes {
                events: 5,
                ..Changes::default()
            }
        );
    }

    #[test]
    fn the_realm_says_whether_it_keeps_admin_events() {
        assert!(admin_events_enabled(
            &json!({"eventsEnabled": false, "adminEventsEnabled": true})
        ));
        assert!(!admin_events_enabled(&json!({"adminEventsEnabled": false})));
        assert!(!admin_events_enabled(&json!({})));
    }
}
