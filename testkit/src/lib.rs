//! The test kit that idsync's integration tests and benches share: fake identity providers
//! that serve a directory in each provider's real shapes, the conformance seam they all
//! offer (`conformance`), the benches' write floor (`floor`) and peak-memory readings
//! (`memory`), readings of the server they start (`process`), the benches' sizes (`sizes`)
//! and generated snapshots (`snapshot`), and a throwaway OpenLDAP server (`slapd`) and
//! Samba Active Directory domain controller (`samba`).
//!
//! A crate of its own so that both the integration test binary and each bench import it by
//! name rather than by `#[path]`; it links the same `idsync` library they do.

pub mod conformance;
pub mod fake_azure;
pub mod fake_google;
pub mod fake_keycloak;
pub mod fake_okta;
pub mod floor;
pub mod memory;
pub mod process;
pub mod samba;
pub mod sizes;
pub mod slapd;
pub mod snapshot;
