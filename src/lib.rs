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
//! - [`db`]: the sqlx pool over SQLite or PostgreSQL, migrations, portable SQL helpers.
//! - [`mirror`]: the stored last-known state of each source and its delta checkpoint, and
//!   SCIM filters answered from its indexed columns and its per-element index.
//! - [`pipeline`]: projection of a mirror through its mapping (filters, attribute
//!   expressions, default and application groups, nesting kept or flattened), effective
//!   membership over nested groups with cycles, and the plan (diff against the target).
//! - [`target`]: the target directory tables: applying plans, run records, read queries.
//! - [`scim`]: the inbound SCIM 2.0 and 1.1 receiver: the server and its limits, tenant
//!   tokens, pushed resources to and from the common model, PATCH, discovery, the event log.
//! - [`scheduler`]: cron schedules of pull connectors for the daemon (no overlapping runs,
//!   a limit on concurrent runs, run-now).
//! - [`sync`]: one run end to end: read, merge, project, check safety limits, apply.
//! - [`audit`]: the audit trail of what admins did (confirmations, discards, runs started
//!   by hand, token changes).
//! - [`daemon`]: `idsync serve`: the listeners, the scheduler's launcher, the admin API
//!   and its tokens.
//! - [`clock`]: the wall clock, read in this one place.
//! - [`metrics`]: the Prometheus registry of runs, IdP requests and SCIM requests.
//! - `main.rs` (the `idsync` binary): the command line over all of the above.

// Production code neither unwraps nor panics (clippy.toml allows both in tests). Set here
// rather than in Cargo.toml's [lints], which would reach the integration tests and benches.
#![deny(clippy::unwrap_used, clippy::panic)]

pub mod audit;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod daemon;
pub mod db;
pub mod filter;
pub mod metrics;
pub mod mirror;
pub mod model;
pub mod pipeline;
pub mod scheduler;
pub mod scim;
pub mod spec;
pub mod sync;
pub mod target;

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
