//! The engine's own state, always in SQL (SQLite or PostgreSQL, whatever the target is):
//! each table below is written by exactly one module here, and by nothing else.
//!
//! - [`db`]: the pool over SQLite or PostgreSQL, migrations (and the one-off indexing of
//!   mirror rows written before the value index existed), portable SQL helpers, write
//!   batches sent in one round trip.
//! - [`mirror`]: the last-known state of each source (`mirror_users`, `mirror_groups`,
//!   `mirror_values`, `mirror_state`), and SCIM filters answered from it.
//! - [`pushed`]: a SCIM tenant's resources as its mirror records (through [`mirror`]).
//! - [`runs`]: run records (`sync_runs`) and held runs.
//! - [`tokens`]: SCIM tenant tokens (`scim_tokens`), stored hashed.
//! - [`holds`]: SCIM tenants held by their removal window (`scim_holds`, `scim_removals`).
//! - [`events`]: the SCIM event log (`scim_events`), written by one task.
//! - [`admin_tokens`]: admin API tokens (`admin_tokens`), stored hashed.
//! - [`admin_sessions`]: browser sessions of the admin pages (`admin_sessions`), stored
//!   hashed.
//! - [`audit`]: the audit trail (`audit_log`).
//! - [`slots`]: scheduled due slots claimed once across nodes (`schedule_slots`).
//! - [`locks`]: the PostgreSQL advisory locks, one enum of lock spaces.
//!
//! The target directory's tables (`users`, `groups`, memberships) are not engine state:
//! they are written through `crate::target::Directory`.

pub mod admin_sessions;
pub mod admin_tokens;
pub mod audit;
pub mod db;
pub mod events;
pub mod holds;
pub mod locks;
pub mod mirror;
pub mod pushed;
pub mod runs;
pub mod slots;
pub mod tokens;
