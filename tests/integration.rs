//! The integration tests, compiled as one binary (every file in tests/ would otherwise be
//! its own binary and slow the build).

// Test code may unwrap and panic: a failure is the test's answer ([lints] in Cargo.toml
// denies both in production code).
#![allow(clippy::unwrap_used, clippy::panic)]

mod admin_access;
mod admin_browser;
mod admin_pages;
mod cli;
mod conformance;
mod connector_azure;
mod connector_egress;
mod connector_google;
mod connector_keycloak;
mod connector_ldap;
mod connector_ldap_ad;
mod connector_okta;
mod daemon;
mod directory_search;
mod golden;
mod mapping_flow;
mod metrics_scrape;
mod mirror_query;
mod postgres_transport;
mod reload;
mod safety;
mod scim_edge;
mod scim_events;
mod scim_interop;
mod scim_replay;
mod scim_server;
mod scim_tokens;
mod scim_v1_conformance;
mod scim_write_path;
mod support;
mod sync_flow;
mod target_ldap;
