//! The target directory in SQL: users, groups, direct and effective memberships, each
//! owned by one connector, and the record of sync runs. Writes happen only inside the
//! run's transaction (see `sync`); reads serve the CLI.

pub mod apply;
pub mod query;
pub mod runs;
pub mod state;
