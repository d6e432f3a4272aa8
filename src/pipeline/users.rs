//! The users a projection wants in the target, set aside: a small head per user in memory
//! (external id, user name, content hash) and each record's JSON in a spool
//! ([`crate::spool`]: memory up to 32 MiB, then an unnamed temporary file). The plan
//! decides on the heads; it reads a record back only to hold a contested rename back, and
//! the apply reads the records it writes a statement's worth at a time. A full run held
//! every projected user whole until the apply before: about a third of an initial sync's
//! peak at a million users (docs/PERFORMANCE.md).

use std::io;
use std::sync::{Arc, Mutex};

use crate::model::hash_value;
use crate::spool::{MEMORY_LIMIT, Spool, SpoolReader, Spot};

use super::TargetUser;
use super::plan::Write;

/// The projected users: heads in the projection's order, records in the spool.
#[derive(Debug, Default)]
pub struct DesiredUsers {
    heads: Vec<UserHead>,
    records: UserRecords,
    scratch: Vec<u8>,
}

/// What the plan decides a user's fate on, without its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHead {
    /// Shared with the plan's maps and writes, not copied into each.
    pub external_id: Arc<str>,
    pub user_name: String,
    /// The record's content hash (`model::hash_value` of its JSON, which `content_hash`
    /// writes out): what the target's stored hash is compared with.
    pub hash: u128,
    spot: Spot,
}

impl DesiredUsers {
    /// Sets `user` aside after the others.
    pub fn push(&mut self, user: &TargetUser) -> io::Result<()> {
        self.push_shared(user, Arc::from(user.external_id.as_str()))
    }

    /// [`push`](Self::push) with the user's external id as a handle the caller shares
    /// (the projection's, which its memberships hold too).
    pub fn push_shared(&mut self, user: &TargetUser, external_id: Arc<str>) -> io::Result<()> {
        debug_assert_eq!(&*external_id, user.external_id);
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, user).map_err(io::Error::other)?;
        let spot = self.records.push(&self.scratch)?;
        self.heads.push(UserHead {
            external_id,
            user_name: user.user_name.clone(),
            hash: hash_value(&self.scratch),
            spot,
        });
        Ok(())
    }

    /// The users set aside in these `users`' order.
    pub fn from_records(users: &[TargetUser]) -> io::Result<DesiredUsers> {
        let mut desired = DesiredUsers::default();
        for user in users {
            desired.push(user)?;
        }
        Ok(desired)
    }

    pub fn heads(&self) -> &[UserHead] {
        &self.heads
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Every record, in the heads' order (for tests and small projections: it reads the
    /// whole spool back).
    pub fn records(&self) -> io::Result<Vec<TargetUser>> {
        self.heads
            .iter()
            .map(|head| self.records.load(head.spot))
            .collect()
    }

    /// Gives back what the heads' list grew into and did not use.
    pub fn shrink_to_fit(&mut self) {
        self.heads.shrink_to_fit();
        self.scratch = Vec::new();
    }

    /// The heads, to take apart, and the records they point into.
    pub fn into_parts(self) -> (Vec<UserHead>, UserRecords) {
        (self.heads, self.records)
    }
}

/// A user the plan writes: its ids and name for the plan and its preview, and where its
/// record is.
#[derive(Debug, Clone)]
pub struct PlannedUser {
    pub external_id: Arc<str>,
    pub user_name: String,
    record: Record,
}

#[derive(Debug, Clone)]
enum Record {
    /// As projected, in the spool.
    Spooled(Spot),
    /// Changed by the plan (a rename held back), or never set aside.
    Held(Box<TargetUser>),
}

impl PlannedUser {
    /// A user as projected, its record in the spool at the head's place.
    pub fn spooled(head: UserHead) -> PlannedUser {
        PlannedUser {
            external_id: head.external_id,
            user_name: head.user_name,
            record: Record::Spooled(head.spot),
        }
    }

    /// A user whose record the plan holds itself.
    pub fn held(user: TargetUser) -> PlannedUser {
        PlannedUser {
            external_id: Arc::from(user.external_id.as_str()),
            user_name: user.user_name.clone(),
            record: Record::Held(Box::new(user)),
        }
    }
}

/// The spool of the projected users' records: written while the projection runs, read
/// from the first load on. Behind a lock because the apply reads through a shared plan.
#[derive(Default)]
pub struct UserRecords(Mutex<Records>);

enum Records {
    Writing(Spool),
    Reading(SpoolReader),
    /// A reader could not be made; every load says so.
    Broken,
}

impl Default for Records {
    fn default() -> Records {
        Records::Writing(Spool::new(MEMORY_LIMIT))
    }
}

impl std::fmt::Debug for UserRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserRecords")
    }
}

impl UserRecords {
    fn push(&mut self, bytes: &[u8]) -> io::Result<Spot> {
        match self.0.get_mut().map_err(|_| poisoned())? {
            Records::Writing(spool) => spool.push(bytes),
            _ => Err(io::Error::other(
                "a projected user was set aside after the first was read back",
            )),
        }
    }

    /// The record at `spot`.
    pub fn load(&self, spot: Spot) -> io::Result<TargetUser> {
        let mut records = self.0.lock().map_err(|_| poisoned())?;
        if matches!(*records, Records::Writing(_))
            && let Records::Writing(spool) = std::mem::replace(&mut *records, Records::Broken)
        {
            *records = Records::Reading(spool.reader()?);
        }
        let Records::Reading(reader) = &mut *records else {
            return Err(io::Error::other(
                "the projected users' spool could not be opened for reading",
            ));
        };
        let bytes = reader.get(spot)?;
        serde_json::from_slice(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a projected user does not read back as one: {e}"),
            )
        })
    }

    /// The records of `user`.
    pub fn record(&self, user: &PlannedUser) -> io::Result<TargetUser> {
        match &user.record {
            Record::Spooled(spot) => self.load(*spot),
            Record::Held(user) => Ok((**user).clone()),
        }
    }

    /// `writes` with their records read back, for the apply (a statement's worth at a
    /// time, so that only those are held whole).
    pub fn load_writes(&self, writes: &[Write<PlannedUser>]) -> io::Result<Vec<Write<TargetUser>>> {
        writes
            .iter()
            .map(|write| {
                Ok(Write {
                    id: write.id.clone(),
                    record: self.record(&write.record)?,
                    hash: write.hash,
                })
            })
            .collect()
    }
}

fn poisoned() -> io::Error {
    io::Error::other("the projected users' spool was left mid-write by a panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::content_hash;
    use crate::pipeline::Attributes;

    fn user(id: &str, name: &str) -> TargetUser {
        let mut attributes = serde_json::Map::new();
        attributes.insert("department".into(), "Engineering \"R&D\"".into());
        TargetUser {
            external_id: id.into(),
            user_name: name.into(),
            display_name: Some(format!("{name} Lovelace")),
            given_name: None,
            family_name: Some("Lovelace".into()),
            email: Some(format!("{name}@example.com")),
            active: id != "u2",
            attributes: Attributes::new(&attributes),
        }
    }

    #[test]
    fn records_read_back_as_projected_with_the_hash_of_their_json() {
        let users: Vec<TargetUser> = (1..=5).map(|i| user(&format!("u{i}"), "ada")).collect();
        let desired = DesiredUsers::from_records(&users).unwrap();
        assert_eq!(desired.len(), 5);
        for (head, user) in desired.heads().iter().zip(&users) {
            assert_eq!(&*head.external_id, user.external_id);
            // The hash the target stores for the record: a projection set aside must not
            // read as changed to a target written before.
            assert_eq!(crate::model::hash_text(head.hash), content_hash(user));
        }
        assert_eq!(desired.records().unwrap(), users);
    }

    #[test]
    fn a_plan_reads_spooled_writes_back_and_keeps_held_ones() {
        let users = vec![user("u1", "ada"), user("u2", "bob")];
        let desired = DesiredUsers::from_records(&users).unwrap();
        let (mut heads, records) = desired.into_parts();
        let mut renamed = users[1].clone();
        renamed.user_name = "bob.old".into();
        let writes = vec![
            Write {
                id: "t2".into(),
                record: PlannedUser::held(renamed.clone()),
                hash: 2,
            },
            Write {
                id: "t1".into(),
                record: PlannedUser::spooled(heads.remove(0)),
                hash: 1,
            },
        ];
        let loaded = records.load_writes(&writes).unwrap();
        assert_eq!(loaded[0].record, renamed);
        assert_eq!((&*loaded[1].id, loaded[1].hash), ("t1", 1));
        assert_eq!(loaded[1].record, users[0]);
    }

    #[test]
    fn records_past_the_memory_limit_read_back_from_the_file() {
        let mut desired = DesiredUsers {
            records: UserRecords(Mutex::new(Records::Writing(Spool::new(64)))),
            ..DesiredUsers::default()
        };
        let users: Vec<TargetUser> = (0..50).map(|i| user(&format!("u{i}"), "x")).collect();
        for user in &users {
            desired.push(user).unwrap();
        }
        assert_eq!(desired.records().unwrap(), users);
    }
}
