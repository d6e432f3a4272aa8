//! idsync keeps an application's user directory in step with the identity providers an
//! organisation manages people in. Every source first lands unchanged in its **mirror**;
//! the mapping pipeline then projects the mirror into the desired slice of the **target
//! directory**, and the diff of the two is the plan that is applied in one transaction.
//!
//! # Layout
//!
//! - [`spec`]: the configuration machinery every settings file uses (problems with file,
//!   line and key; secrets by reference; durations; typed checks); it imports nothing above.
//! - [`config`]: the tree loader: `idsync.toml`, `connectors/*.toml` (common keys, then
//!   each kind's own table by its settings in `connectors/<kind>/`), `mappings/*.toml`.
//! - [`model`]: the common model every source is normalised to (users, groups, members).
//! - [`connectors`]: the [`connectors::PullConnector`] seam and its implementations
//!   (`file`, `azure`, `okta`, `google`, `keycloak`), with the HTTP plumbing the API
//!   connectors share (credentials pinned to their host, capped bodies, retries, paging).
//! - [`filter`]: the SCIM filter language (RFC 7644 3.4.2.2): one parser and AST, used by
//!   mapping filters and the SCIM receiver.
//! - [`store`]: the engine's own state, each table written by one module of it, over
//!   [`store::db`] (the sqlx pool over SQLite or PostgreSQL, migrations, portable SQL
//!   helpers; re-exported as `idsync::db`): the mirror of each source (and SCIM filters answered from it), run records, SCIM tokens,
//!   holds and event log, admin tokens, the audit trail, claimed due slots, and the
//!   PostgreSQL advisory locks.
//! - [`pipeline`]: projection of a mirror through its mapping (filters, attribute
//!   expressions, default and application groups, nesting kept or flattened), effective
//!   membership over nested groups with cycles, and the plan (diff against the target).
//! - [`target`]: the target directory behind one narrow seam ([`target::Directory`] for
//!   runs, [`target::query::DirectoryReads`] for the CLI) with its SQL implementation, and
//!   the LDAP target that writes an LDAP server with those tables as its record.
//! - [`scim`]: the inbound SCIM 2.0 and 1.1 receiver: the server and its limits, pushed
//!   resources to and from the common model, PATCH, discovery.
//! - [`scheduler`]: cron schedules of pull connectors for the daemon (no overlapping runs,
//!   a limit on concurrent runs, run-now).
//! - [`sync`]: one run as named phases: read, merge (the cursor contract), scope, project,
//!   plan, hold (safety limits), apply; push for what a SCIM request wrote.
//! - [`daemon`]: `idsync serve`: the listeners, the scheduler's launcher, the admin API and
//!   the admin pages.
//! - [`clock`]: the wall clock, read in this one place.
//! - [`spool`]: where a run sets records aside as bytes (memory up to a limit, then an
//!   unnamed temporary file): what a connector read, until the merge; the projected users,
//!   until the plan and the apply.
//! - [`metrics`]: the Prometheus registry of runs, IdP requests and SCIM requests.
//! - `main.rs` (the `idsync` binary): the command line over all of the above.

pub mod clock;
pub mod config;
pub mod connectors;
pub mod daemon;
pub mod filter;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod scheduler;
pub mod scim;
pub mod spec;
pub mod spool;
pub mod store;
pub mod sync;
pub mod target;

// The database layer belongs to the store; it is used everywhere, so it keeps its short path.
pub use store::db;

/// The allocator `idsync` runs with: each binary declares it as its `#[global_allocator]`
/// (the command line, and the benches and examples, so that they measure what ships).
/// mimalloc rather than glibc's malloc, which took about a sixth of an initial sync's CPU
/// in a profile; docs/PERFORMANCE.md has the figures.
pub use mimalloc::MiMalloc as Allocator;

#[cfg(test)]
mod layout_tests {
    /// The `# Layout` list above names every top-level module, and only those.
    #[test]
    fn the_layout_list_names_every_module() {
        let source = include_str!("lib.rs");
        let mut listed: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! - [`"))
            .filter_map(|l| l.split_once("`]"))
            .map(|(name, _)| name)
            .collect();
        let mut declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod "))
            .filter_map(|l| l.strip_suffix(';'))
            .collect();
        listed.sort_unstable();
        declared.sort_unstable();
        assert_eq!(listed, declared, "update the `# Layout` list in src/lib.rs");
    }
}
