//! Google's admin log as a change feed: which users and groups an incremental read must
//! read again.
//!
//! `GET {api}/admin/reports/v1/activity/users/all/applications/admin?startTime=...`
//! (<https://developers.google.com/workspace/admin/reports/v1/reference/activities/list>)
//! lists the admin console's and the Directory API's changes as activities, each with
//! `events[]` of a `type` and `name` whose `parameters[]` name the user or group by
//! **e-mail address**, never by id:
//!
//! | `type` | `name` | parameters read | read again |
//! | --- | --- | --- | --- |
//! | `USER_SETTINGS` | any (`CREATE_USER`, `SUSPEND_USER`, `CHANGE_FIRST_NAME`, ...) | `USER_EMAIL` | the user (`users.get`) |
//! | `USER_SETTINGS` | `RENAME_USER` | `USER_EMAIL`, `NEW_VALUE` | the user, by both addresses |
//! | `USER_SETTINGS` | `DELETE_USER` | `USER_EMAIL` | the users deleted lately (`users.list?showDeleted=true`) |
//! | `USER_SETTINGS` | `CREATE_USER`, `UNSUSPEND_USER`, `UNARCHIVE_USER`, `UNDELETE_USER` | `USER_EMAIL` | also the user's groups (`groups.list?userKey=`): a user left out until now is in no group of the mirror |
//! | `GROUP_SETTINGS` | any (`CREATE_GROUP`, `ADD_GROUP_MEMBER`, `CHANGE_GROUP_NAME`, ...) | `GROUP_EMAIL` | the group and its members |
//! | `GROUP_SETTINGS` | `CHANGE_GROUP_EMAIL` | `GROUP_EMAIL`, `NEW_VALUE` | the group, by both addresses |
//! | `GROUP_SETTINGS` | `DELETE_GROUP` | `GROUP_EMAIL` | the ids of every group (so deleted ones go) |
//!
//! (Event names and parameters: <https://developers.google.com/workspace/admin/reports/v1/appendix/activity/admin-user-settings>
//! and <https://developers.google.com/workspace/admin/reports/v1/appendix/activity/admin-group-settings>.)
//! A deleted user or group cannot be read by its address, and the events carry no id, so
//! deletions are found by listing instead.

use std::collections::BTreeSet;

use serde_json::Value;

/// What the activities of one read ask to read again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Changes {
    /// Addresses of users created, changed or renamed.
    pub users: BTreeSet<String>,
    /// A user was deleted.
    pub users_deleted: bool,
    /// Addresses of users created or brought back (unsuspended, unarchived, restored):
    /// their groups are read too.
    pub rejoined: BTreeSet<String>,
    /// Addresses of groups created or changed, or whose members changed.
    pub groups: BTreeSet<String>,
    /// A group was deleted.
    pub groups_deleted: bool,
    /// Events seen.
    pub events: usize,
}

impl Changes {
    /// Takes one activity (`items[]` of `activities.list`) into account. Events of other
    /// types are ignored.
    pub fn note(&mut self, activity: &Value) {
        let Some(events) = activity.get("events").and_then(Value::as_array) else {
            return;
        };
        for event in events {
            self.events += 1;
            let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
            let (kind, name) = (text("type"), text("name"));
            let address = |parameter: &str| self::parameter(event, parameter);
            match kind {
                "USER_SETTINGS" => {
                    self.users.extend(address("USER_EMAIL"));
                    if name == "RENAME_USER" {
                        self.users.extend(address("NEW_VALUE"));
                    }
                    self.users_deleted |= name == "DELETE_USER";
                    if REJOINING.contains(&name) {
                        self.rejoined.extend(address("USER_EMAIL"));
                    }
                }
                "GROUP_SETTINGS" => {
                    self.groups.extend(address("GROUP_EMAIL"));
                    if name == "CHANGE_GROUP_EMAIL" {
                        self.groups.extend(address("NEW_VALUE"));
                    }
                    self.groups_deleted |= name == "DELETE_GROUP";
                }
                _ => {}
            }
        }
    }
}

/// User events after which the user may be synced while the mirror's groups do not list
/// them (a full read leaves users it does not sync out of every group).
const REJOINING: [&str; 4] = [
    "CREATE_USER",
    "UNSUSPEND_USER",
    "UNARCHIVE_USER",
    "UNDELETE_USER",
];

/// The value of `parameters[name = ...]`, lowercased (addresses are case-insensitive).
fn parameter(event: &Value, name: &str) -> Option<String> {
    event
        .get("parameters")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")?
        .as_str()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn activity(kind: &str, name: &str, parameters: &[(&str, &str)]) -> Value {
        let parameters: Vec<Value> = parameters
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        json!({"kind": "admin#reports#activity",
            "id": {"time": "2026-12-06T10:00:00.000Z", "uniqueQualifier": "1",
                "applicationName": "admin", "customerId": "C01abcd23"},
            "actor": {"email": "admin@example.com", "profileId": "1"},
            "events": [{"type": kind, "name": name, "parameters": parameters}]})
    }

    fn changes(activities: &[Value]) -> Changes {
        let mut changes = Changes::default();
        for a in activities {
            changes.note(a);
        }
        changes
    }

    #[test]
    fn user_and_group_events_name_what_to_read_again() {
        let seen = changes(&[
            activity(
                "USER_SETTINGS",
                "CREATE_USER",
                &[("USER_EMAIL", "A@example.com")],
            ),
            activity(
                "USER_SETTINGS",
                "CHANGE_FIRST_NAME",
                &[("USER_EMAIL", "b@example.com"), ("NEW_VALUE", "Bee")],
            ),
            activity(
                "USER_SETTINGS",
                "RENAME_USER",
                &[
                    ("USER_EMAIL", "c@example.com"),
                    ("NEW_VALUE", "see@example.com"),
                ],
            ),
            activity(
                "GROUP_SETTINGS",
                "ADD_GROUP_MEMBER",
                &[
                    ("USER_EMAIL", "a@example.com"),
                    ("GROUP_EMAIL", "eng@example.com"),
                ],
            ),
            activity(
                "GROUP_SETTINGS",
                "CHANGE_GROUP_EMAIL",
                &[
                    ("GROUP_EMAIL", "ops@example.com"),
                    ("NEW_VALUE", "sre@example.com"),
                ],
            ),
        ]);
        assert_eq!(
            seen.users.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "a@example.com",
                "b@example.com",
                "c@example.com",
                "see@example.com"
            ]
        );
        assert_eq!(
            seen.groups.iter().map(String::as_str).collect::<Vec<_>>(),
            ["eng@example.com", "ops@example.com", "sre@example.com"]
        );
        assert!(!seen.users_deleted && !seen.groups_deleted);
        assert_eq!(seen.events, 5);
    }

    #[test]
    fn deletions_are_flagged_for_a_listing() {
        let seen = changes(&[
            activity(
                "USER_SETTINGS",
                "DELETE_USER",
                &[("USER_EMAIL", "a@example.com")],
            ),
            activity(
                "GROUP_SETTINGS",
                "DELETE_GROUP",
                &[("GROUP_EMAIL", "g@example.com")],
            ),
        ]);
        assert!(seen.users_deleted && seen.groups_deleted);
    }

    #[test]
    fn users_brought_back_have_their_groups_read() {
        let seen = changes(&[
            activity(
                "USER_SETTINGS",
                "UNSUSPEND_USER",
                &[("USER_EMAIL", "a@example.com")],
            ),
            activity(
                "USER_SETTINGS",
                "CREATE_USER",
                &[("USER_EMAIL", "b@example.com")],
            ),
            activity(
                "USER_SETTINGS",
                "SUSPEND_USER",
                &[("USER_EMAIL", "c@example.com")],
            ),
        ]);
        assert_eq!(
            seen.rejoined.iter().map(String::as_str).collect::<Vec<_>>(),
            ["a@example.com", "b@example.com"]
        );
    }

    #[test]
    fn other_events_change_nothing() {
        let seen = changes(&[
            activity(
                "DOMAIN_SETTINGS",
                "ADD_DOMAIN",
                &[("DOMAIN_NAME", "x.example")],
            ),
            activity("USER_SETTINGS", "CHANGE_PASSWORD", &[]),
            json!({"id": {"time": "2026-12-06T10:00:00.000Z"}}),
        ]);
        assert_eq!(
            seen,
            Changes {
                events: 2,
                ..Changes::default()
            }
        );
    }
}
