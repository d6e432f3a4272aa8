//! The LDAP target (`[target] kind = "ldap"`): the target directory written into an LDAP
//! server, for applications that read their users only from LDAP.
//!
//! The target tables of the engine's database stay the record of what the directory
//! should hold: every run plans and applies against them in its transaction exactly as
//! with the SQL target (so plans, safety limits, holds and dry runs behave the same), and
//! then, still inside that transaction, the LDAP server is brought in line with them:
//! the entries under the configured containers are read, compared with the tables, and
//! only the difference is written ([`entry::diff`]). LDAP has no transactions: a run that
//! fails halfway has written some entries and rolls its tables back, so the next run plans
//! the same changes again and the comparison completes them. A run that changed nothing
//! writes nothing; a full run also repairs entries changed behind idsync's back.
//!
//! Only entries the bind account created (`creatorsName`, RFC 4512 section 3.4.1) are
//! written; another entry in the way of one of idsync's is left alone and reported.

mod desired;
mod entry;
mod session;
pub mod settings;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};
use tracing::{info, warn};

use super::{Directory, DirectoryError, EffectiveUpdate, Owned, SqlDirectory};
use crate::db::{Batch, Context, select_in};
use crate::pipeline::plan::{Current, ForeignNames, NamedGroup, NewIds, Plan};
use crate::pipeline::{PlannedUser, TargetGroup};
pub use session::LdapWriteError;
pub use settings::{LdapTargetSettings, RawLdapTarget};

/// The target tables as the record, an LDAP server as the directory.
pub struct LdapDirectory {
    settings: LdapTargetSettings,
    tables: SqlDirectory,
    /// Where records the current plan renames or moves were before it (target id -> old
    /// DN), so that the move is a modrdn.
    before: Mutex<HashMap<String, String>>,
}

impl LdapDirectory {
    pub fn new(settings: LdapTargetSettings) -> LdapDirectory {
        LdapDirectory {
            settings,
            tables: SqlDirectory,
            before: Mutex::new(HashMap::new()),
        }
    }

    /// The attributes idsync writes and reads back.
    fn managed_attributes(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            "objectClass",
            "uid",
            "cn",
            "sn",
            "givenName",
            "displayName",
            "mail",
            "description",
            self.settings.group_class.member_attribute(),
        ]
        .map(str::to_owned)
        .to_vec();
        if let settings::Deactivate::Lock { attribute, .. } = &self.settings.deactivate {
            names.push(attribute.clone());
        }
        names.extend(
            self.settings
                .attributes
                .iter()
                .map(|(ldap, _)| ldap.clone()),
        );
        names
    }

    /// The DNs the records a plan renames, moves or deactivates have now (before it).
    async fn record_places(
        &self,
        tx: &mut AnyConnection,
        plan: &Plan,
    ) -> Result<(), DirectoryError> {
        // Target ids are unique across users and groups: one list serves both tables.
        let ids: Vec<String> = plan
            .user_updates
            .iter()
            .map(|w| w.id.to_string())
            .chain(plan.user_removals.iter().map(|r| r.id.clone()))
            .chain(plan.group_updates.iter().map(|w| w.id.to_string()))
            .chain(plan.group_deletes.iter().map(|r| r.id.clone()))
            .collect();
        let mut places = HashMap::new();
        desired::dns_of(tx, &self.settings, &ids, &mut places).await?;
        self.lock_before().extend(places);
        Ok(())
    }

    fn lock_before(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding the map cannot leave it half-written: take it as it is.
        self.before
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings the server in line with the target tables: all of it, or with `plan` only
    /// the entries that plan touched.
    async fn write_through(
        &self,
        tx: &mut AnyConnection,
        plan: Option<&Plan>,
    ) -> Result<(), DirectoryError> {
        let before = std::mem::take(&mut *self.lock_before());
        let desired = match plan {
            None => desired::load(tx, &self.settings, None).await?,
            Some(plan) => self.load_touched(tx, plan, &before).await?,
        };
        // The old DN of each record whose DN changed, keyed by its new DN.
        let moved: HashMap<String, String> = before
            .iter()
            .filter_map(|(id, old)| {
                let new = desired.dns.get(id)?;
                (entry::normalized(new) != entry::normalized(old))
                    .then(|| (entry::normalized(new), old.clone()))
            })
            .collect();
        let target = session::Target::open(&self.settings)
            .await
            .map_err(backend)?;
        let result = async {
            let managed = self.managed_attributes();
            let found = match plan {
                None => target.read(&managed).await?,
                Some(_) => {
                    let mut dns: Vec<String> = desired
                        .users
                        .iter()
                        .chain(&desired.groups)
                        .map(|e| e.dn.clone())
                        .chain(before.values().cloned())
                        .collect();
                    dns.sort();
                    dns.dedup();
                    target.read_dns(&dns, &managed).await?
                }
            };
            let writes = entry::diff(&desired.users, &desired.groups, &found, &moved);
            for dn in &writes.foreign {
                warn!(
                    target: "idsync::target",
                    %dn,
                    "LDAP target: an entry idsync did not create holds this DN; left alone"
                );
            }
            let applied = target.apply(&writes).await?;
            info!(
                target: "idsync::target",
                applied,
                compared = desired.users.len() + desired.groups.len(),
                "LDAP target in line"
            );
            Ok(())
        }
        .await;
        target.close().await;
        result.map_err(backend)
    }

    /// What a plan over changed users touched: its users and groups, and the groups that
    /// name a user or group whose DN it changed (their member values follow).
    async fn load_touched(
        &self,
        tx: &mut AnyConnection,
        plan: &Plan,
        before: &HashMap<String, String>,
    ) -> Result<desired::Desired, DirectoryError> {
        const CTX: &str = "reading the target for the LDAP directory";
        let touched = touched(plan);
        let mut desired = desired::load(tx, &self.settings, Some(&touched)).await?;
        // Records whose DN this plan changed — renamed, moved, or (with `delete`) gone
        // or back — are named by groups whose member values must follow.
        let renamed: Vec<String> = touched
            .users
            .iter()
            .chain(&touched.groups)
            .filter(|id| {
                let old = before.get(*id).map(|dn| entry::normalized(dn));
                let new = desired.dns.get(*id).map(|dn| entry::normalized(dn));
                old != new
            })
            .cloned()
            .collect();
        let known: HashSet<&String> = touched.groups.iter().collect();
        let mut naming: Vec<String> = Vec::new();
        let sql = "SELECT DISTINCT group_id FROM memberships";
        for row in select_in(tx, sql, None, "member_id", &renamed, CTX).await? {
            let group: String = row.try_get("group_id").context(CTX)?;
            if !known.contains(&group) {
                naming.push(group);
            }
        }
        if !naming.is_empty() {
            let only = desired::Touched {
                users: Vec::new(),
                groups: naming,
            };
            let more = desired::load(tx, &self.settings, Some(&only)).await?;
            desired.groups.extend(more.groups);
            desired.dns.extend(more.dns);
        }
        Ok(desired)
    }
}

/// The target ids a plan writes.
fn touched(plan: &Plan) -> desired::Touched {
    let mut users: Vec<String> = plan
        .user_creates
        .iter()
        .chain(&plan.user_updates)
        .map(|w| w.id.to_string())
        .chain(plan.user_removals.iter().map(|r| r.id.clone()))
        .collect();
    let mut groups: Vec<String> = plan
        .group_creates
        .iter()
        .chain(&plan.group_updates)
        .chain(&plan.managed_creates)
        .map(|w| w.id.to_string())
        .chain(plan.group_deletes.iter().map(|r| r.id.clone()))
        .chain(plan.membership_adds.iter().map(|m| m.group_id.to_string()))
        .chain(
            plan.membership_removes
                .iter()
                .map(|(group, _)| group.clone()),
        )
        .collect();
    users.sort();
    users.dedup();
    groups.sort();
    groups.dedup();
    desired::Touched { users, groups }
}

/// `idsync check --connect` for the LDAP target: the bind, and each container (it exists
/// and the bind account can read below it with a paged search). Write access shows at the
/// first run: probing it would mean writing.
pub async fn diagnose(settings: &LdapTargetSettings) -> Vec<crate::connectors::Diagnosis> {
    use crate::connectors::Diagnosis;
    let target = match session::Target::open(settings).await {
        Ok(target) => target,
        Err(error) => return vec![Diagnosis::failed("bind", error.to_string())],
    };
    let mut checks = vec![Diagnosis::ok(
        "bind",
        format!(
            "bound to {} as {}",
            settings.transport.url, settings.bind_dn
        ),
    )];
    let mut containers = vec![
        ("users_dn", &settings.users_dn),
        ("groups_dn", &settings.groups_dn),
    ];
    if let settings::Deactivate::Move { container } = &settings.deactivate {
        containers.push(("disabled_dn", container));
    }
    for (key, dn) in containers {
        checks.push(match target.probe(dn).await {
            Ok(count) => Diagnosis::ok(key, format!("{dn} exists and is readable ({count})")),
            Err(error) => Diagnosis::failed(key, error.to_string()),
        });
    }
    target.close().await;
    checks
}

fn backend(error: LdapWriteError) -> DirectoryError {
    DirectoryError::Backend {
        context: "writing the LDAP target",
        source: Box::new(error),
    }
}

impl NewIds for LdapDirectory {
    fn user_id(&self, user: &PlannedUser) -> String {
        self.tables.user_id(user)
    }
    fn group_id(&self, group: &TargetGroup) -> String {
        self.tables.group_id(group)
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn lock_writes(&self, tx: &mut AnyConnection) -> Result<(), DirectoryError> {
        self.tables.lock_writes(tx).await
    }

    async fn load_owned(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        which: Owned<'_>,
    ) -> Result<Current, DirectoryError> {
        self.tables.load_owned(tx, connector, which).await
    }

    async fn add_owned_groups(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        current: &mut Current,
        external_ids: &[String],
    ) -> Result<(), DirectoryError> {
        self.tables
            .add_owned_groups(tx, connector, current, external_ids)
            .await
    }

    async fn add_nesting(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        current: &mut Current,
        parents: &[String],
    ) -> Result<(), DirectoryError> {
        self.tables
            .add_nesting(tx, connector, current, parents)
            .await
    }

    async fn users_outside(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        owner: &str,
        group: &str,
    ) -> Result<Vec<String>, DirectoryError> {
        self.tables.users_outside(tx, connector, owner, group).await
    }

    async fn user_names_held(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        keys: &[String],
        besides: Option<&HashSet<String>>,
    ) -> Result<ForeignNames, DirectoryError> {
        self.tables
            .user_names_held(tx, connector, keys, besides)
            .await
    }

    async fn group_names_held(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        keys: &[String],
    ) -> Result<ForeignNames, DirectoryError> {
        self.tables.group_names_held(tx, connector, keys).await
    }

    async fn groups_by_name(
        &self,
        tx: &mut AnyConnection,
        keys: &[String],
    ) -> Result<HashMap<String, NamedGroup>, DirectoryError> {
        self.tables.groups_by_name(tx, keys).await
    }

    /// The tables are written at once, `defer` or not: `converge` reads them.
    async fn apply(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        plan: &Plan,
        _defer: Option<&mut Batch>,
    ) -> Result<(), DirectoryError> {
        self.record_places(tx, plan).await?;
        self.tables.apply(tx, connector, plan, None).await
    }

    async fn update_effective(
        &self,
        tx: &mut AnyConnection,
        connector: &str,
        update: EffectiveUpdate<'_>,
    ) -> Result<(), DirectoryError> {
        self.tables.update_effective(tx, connector, update).await
    }

    async fn converge(
        &self,
        tx: &mut AnyConnection,
        _connector: &str,
        plan: &Plan,
        full: bool,
    ) -> Result<(), DirectoryError> {
        if plan.is_empty() && !full {
            self.lock_before().clear();
            return Ok(());
        }
        // A plan over changed users writes only what it touched; a full one compares the
        // whole directory (and repairs what was changed behind idsync's back).
        self.write_through(tx, (!full).then_some(plan)).await
    }
}
