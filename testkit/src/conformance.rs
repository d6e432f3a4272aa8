//! What every fake identity provider (`fake_<kind>` in this kit) offers the shared
//! connector conformance suite (tests/conformance.rs): a directory to serve, knobs for the
//! misbehaviours to emulate, request statistics, and a connector pointed at it.
//!
//! A fake serves the directory in its provider's real JSON shapes, paging, auth flow and
//! error bodies (see the sources in `docs/connectors.md` and `docs/connectors-<kind>.md`).
//! The knobs are provider-neutral; each fake maps them onto its provider's own form (Okta's
//! 429 carries X-Rate-Limit-Reset, Google's permission error is a 403 `forbidden` envelope,
//! and so on).

use std::sync::Arc;

use async_trait::async_trait;
use idsync::connectors::PullConnector;

/// A user as the directory holds it, before any provider's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// The provider's immutable id.
    pub id: String,
    /// Login / userPrincipalName / primaryEmail / username.
    pub user_name: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub status: UserStatus,
}

/// What state a user is in, as each provider can express it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Suspended / disabled / accountEnabled false: synced as an inactive user.
    Suspended,
    /// Deprovisioned or deleted in the provider: must not reach the target as active.
    Deleted,
    /// A guest (Graph `userType = Guest`): synced unless the connector excludes guests.
    Guest,
    /// A service account / technical user the connector skips.
    Service,
}

/// A group; members are users or groups of the same directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGroup {
    pub id: String,
    pub name: String,
    pub members: Vec<FakeMember>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeMember {
    User(String),
    Group(String),
}

/// The whole directory a fake serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub users: Vec<FakeUser>,
    pub groups: Vec<FakeGroup>,
}

impl Directory {
    /// `users` users (every 10th suspended, every 25th a guest, one service account, one
    /// deleted), `groups` groups each with `members_per_group` users (wrapping), group 1
    /// nested in group 0, group 2 in group 1, and group 0 in group 2 (a cycle).
    pub fn generated(users: usize, groups: usize, members_per_group: usize) -> Directory {
        let mut dir = Directory::default();
        for i in 0..users {
            let status = if i == 3 {
                UserStatus::Service
            } else if i == 5 {
                UserStatus::Deleted
            } else if i % 25 == 24 {
                UserStatus::Guest
            } else if i % 10 == 9 {
                UserStatus::Suspended
            } else {
                UserStatus::Active
            };
            dir.users.push(FakeUser {
                id: format!("00u{i:06}"),
                user_name: format!("user{i:06}@example.com"),
                email: format!("user{i:06}@example.com"),
                given_name: format!("Given{i}"),
                family_name: format!("Family{i}"),
                status,
            });
        }
        for g in 0..groups {
            let members = (0..members_per_group)
                .map(|k| {
                    FakeMember::User(format!(
                        "00u{:06}",
                        (g * members_per_group + k) % users.max(1)
                    ))
                })
                .collect();
            dir.groups.push(FakeGroup {
                id: format!("00g{g:05}"),
                name: format!("Group {g}"),
                members,
            });
        }
        if groups >= 3 {
            let ids: Vec<String> = dir.groups[..3].iter().map(|g| g.id.clone()).collect();
            dir.groups[0]
                .members
                .push(FakeMember::Group(ids[1].clone()));
            dir.groups[1]
                .members
                .push(FakeMember::Group(ids[2].clone()));
            dir.groups[2]
                .members
                .push(FakeMember::Group(ids[0].clone()));
        }
        dir
    }

    pub fn user(&self, id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// Adds the nesting `nested` describes (group index -> indexes of the groups it holds,
    /// as [`crate::snapshot::nesting`] draws it), leaving out what a group already holds:
    /// the benches' deep chains with cycles, served in each provider's form (a fake whose
    /// provider cannot hold a cycle, Keycloak's tree, drops the closing edge itself).
    pub fn nest(&mut self, nested: &[Vec<usize>]) {
        for (g, children) in nested.iter().enumerate() {
            for &child in children {
                let Some(member) = self
                    .groups
                    .get(child)
                    .map(|c| FakeMember::Group(c.id.clone()))
                else {
                    continue;
                };
                let Some(holder) = self.groups.get_mut(g) else {
                    continue;
                };
                if !holder.members.contains(&member) {
                    holder.members.push(member);
                }
            }
        }
    }

    /// A hundred changes, as the incremental-read tests make them: 50 active users get a
    /// new given name (`Renamed {id}`), and groups 10 to 59 each gain one active user who
    /// was not their member. Needs a generated directory of at least 3,550 active users
    /// and 60 groups.
    pub fn with_hundred_changes(&self) -> HundredChanges {
        let mut directory = self.clone();
        let renamed: Vec<(String, String)> = directory
            .users
            .iter_mut()
            .filter(|u| u.status == UserStatus::Active)
            .skip(1000)
            .take(50)
            .map(|u| {
                u.given_name = format!("Renamed {}", u.id);
                (u.user_name.clone(), u.given_name.clone())
            })
            .collect();
        let joining: Vec<String> = self
            .users
            .iter()
            .filter(|u| u.status == UserStatus::Active)
            .skip(3500)
            .take(50)
            .map(|u| u.id.clone())
            .collect();
        assert_eq!(
            (renamed.len(), joining.len()),
            (50, 50),
            "directory too small"
        );
        let mut joined = Vec::new();
        for (g, user) in (10..60).zip(&joining) {
            let member = FakeMember::User(user.clone());
            let group = &mut directory.groups[g];
            assert!(
                !group.members.contains(&member),
                "{user} is new to {}",
                group.id
            );
            group.members.push(member);
            joined.push((group.id.clone(), group.name.clone(), user.clone()));
        }
        HundredChanges {
            directory,
            renamed,
            joined,
        }
    }
}

/// What [`Directory::with_hundred_changes`] changed.
pub struct HundredChanges {
    /// The directory after the changes.
    pub directory: Directory,
    /// The renamed users: user name and new given name.
    pub renamed: Vec<(String, String)>,
    /// The new memberships: group id, group name, user id.
    pub joined: Vec<(String, String, String)>,
}

/// Which listing a knob applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Users,
    Groups,
    /// Any group's member listing.
    Members,
}

/// Misbehaviours to emulate. The default is a well-behaved server.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// The most items the server returns per page, whatever the client asks (0: the
    /// provider's own maximum).
    pub page_size: usize,
    /// Every n-th API request (not token requests) is answered 429 in the provider's form,
    /// asking to retry after 0 or 1 second.
    pub throttle_every: Option<usize>,
    /// An access token stops working after this many API requests (401 in the provider's
    /// form); the next token request issues a new one.
    pub token_lifetime_requests: Option<usize>,
    /// The last page of this listing always fails with a 500 (for members: the last page
    /// of the last group).
    pub fail_last_page: Option<Listing>,
    /// This listing answers 403 in the provider's form, naming the missing permission.
    pub deny: Option<Listing>,
    /// Every API request is answered this much later (slow runs, for the daemon tests).
    pub request_delay: std::time::Duration,
}

/// What the fake saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// API requests (token requests not counted), throttled ones included.
    pub requests: usize,
    /// Requests answered 429.
    pub throttled: usize,
    /// Access tokens issued.
    pub tokens_issued: usize,
}

/// A fake identity provider serving on 127.0.0.1.
#[async_trait]
pub trait FakeProvider: Send + Sync {
    /// The connector kind (`azure`, `okta`, `google`, `keycloak`).
    fn kind(&self) -> &'static str;
    /// A connector configured against this fake (the same settings an admin would write,
    /// with the base and token URLs overridden).
    fn connector(&self) -> Box<dyn PullConnector>;
    fn stats(&self) -> Stats;
    /// Replaces what the fake serves (for incremental and delta reads).
    fn set_directory(&self, directory: Directory);
    /// Text the error of a [`Knobs::deny`] read must contain: the permission, scope or role
    /// the admin has to grant.
    fn missing_permission_hint(&self) -> &'static str;
    /// Whether the connector reports suspended users as inactive (true) or leaves them out.
    fn suspended_are_listed(&self) -> bool {
        true
    }
    /// The connector with the settings an admin gets by default (incremental or delta reads
    /// where the provider has them); [`FakeProvider::connector`] may differ where the
    /// conformance suite needs it to (every read full).
    fn default_connector(&self) -> Box<dyn PullConnector> {
        self.connector()
    }
    /// Every API request served so far (token requests excluded): absolute URL and the
    /// `Authorization` header it carried, so a benchmark can replay them as a plain fetch.
    fn served(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The request rate [`FakeProvider::default_connector`] holds itself to, where its
    /// settings set one (a benchmark's plain fetch is paced the same).
    fn requests_per_second(&self) -> Option<std::num::NonZeroU32> {
        None
    }
}

/// Requests a fake served, for [`FakeProvider::served`].
pub type ServedLog = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Wraps a fake's router so that every request whose path does not contain `token` is
/// recorded (absolute URL on `base`, Authorization header) in `log`.
pub fn recording(router: axum::Router, base: String, log: ServedLog) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let log = log.clone();
            let base = base.clone();
            async move {
                let path = request.uri().path();
                if !path.contains("token") {
                    let auth = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    log.lock()
                        .expect("log")
                        .push((format!("{base}{}", request.uri()), auth));
                }
                next.run(request).await
            }
        },
    ))
}

/// Starts a fake of one provider.
pub type StartFake =
    fn(Directory, Knobs) -> futures_util::future::BoxFuture<'static, Arc<dyn FakeProvider>>;

/// A directory with its users and groups indexed by id, for fakes that look members up
/// (a linear search per member makes a 500,000-membership directory take hours).
#[derive(Debug, Clone, Default)]
pub struct IndexedDirectory {
    pub directory: Directory,
    users: std::collections::HashMap<String, usize>,
    groups: std::collections::HashMap<String, usize>,
}

impl IndexedDirectory {
    pub fn new(directory: Directory) -> IndexedDirectory {
        let users = directory
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.clone(), i))
            .collect();
        let groups = directory
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        IndexedDirectory {
            directory,
            users,
            groups,
        }
    }

    pub fn user(&self, id: &str) -> Option<&FakeUser> {
        self.users.get(id).map(|&i| &self.directory.users[i])
    }

    pub fn group(&self, id: &str) -> Option<&FakeGroup> {
        self.groups.get(id).map(|&i| &self.directory.groups[i])
    }
}

impl std::ops::Deref for IndexedDirectory {
    type Target = Directory;
    fn deref(&self) -> &Directory {
        &self.directory
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(dir: &Directory, g: usize) -> Vec<&str> {
        dir.groups[g]
            .members
            .iter()
            .filter_map(|m| match m {
                FakeMember::Group(id) => Some(id.as_str()),
                FakeMember::User(_) => None,
            })
            .collect()
    }

    #[test]
    fn nesting_adds_each_edge_once_and_skips_groups_that_do_not_exist() {
        // The generated directory already nests 0 -> 1 -> 2 -> 0.
        let mut dir = Directory::generated(10, 4, 2);
        dir.nest(&[vec![1], vec![2, 3], vec![], vec![0, 9]]);
        assert_eq!(held(&dir, 0), vec!["00g00001"]);
        assert_eq!(held(&dir, 1), vec!["00g00002", "00g00003"]);
        assert_eq!(held(&dir, 2), vec!["00g00000"]);
        assert_eq!(held(&dir, 3), vec!["00g00000"]);
    }
}
