//! What one connector kind provides, so the tree loader (`config/connector.rs`) and
//! `ConnectorConfig::build` can treat every kind alike: its settings table (type, checks,
//! the message when it is missing) and how its settings become a running connector.
//!
//! Each `connectors/<kind>/mod.rs` has a unit struct implementing [`PullKind`]; the loader
//! still names each kind in a few places (its enum arm, its raw table field, the kind
//! lists; see "Adding a connector" in docs/ARCHITECTURE.md).

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::{ConnectorError, PullConnector};
use crate::spec::problems::{Problems, Source};

/// What a kind's settings check may need besides its own table.
pub struct SettingsContext<'a> {
    /// The directory of `idsync.toml`: relative paths and secret files resolve against it.
    pub base_dir: &'a std::path::Path,
    /// The connector's `enabled`: a disabled connector may be accepted with secrets that
    /// cannot be looked up here.
    pub enabled: bool,
}

/// One kind of pull connector.
pub trait PullKind {
    /// Its name, as written in `kind = "..."` and as the name of its settings table.
    const NAME: &'static str;
    /// What a connector of this kind must have when its table is missing (the whole
    /// message, shown at `kind`).
    const NEEDS: &'static str;
    /// Its table as written.
    type Raw: DeserializeOwned + std::fmt::Debug;
    /// Its settings, resolved and checked.
    type Settings: std::fmt::Debug + Clone;

    /// Checks the table (`table` spans it), recording every problem; the settings only
    /// when it has none.
    fn settings(
        source: &Source<'_>,
        context: &SettingsContext<'_>,
        table: &Spanned<Self::Raw>,
        problems: &mut Problems,
    ) -> Option<Self::Settings>;

    /// The running connector.
    fn connect(settings: &Self::Settings) -> Result<Box<dyn PullConnector>, ConnectorError>;
}
