//! What one connector kind provides, so the tree loader (`config/connector.rs`) can treat
//! every kind alike from one list of kinds: its settings table (type, the check, the message
//! when it is missing), how its settings become a running connector, and which keys its user
//! records hold.
//!
//! Each `connectors/<kind>/settings.rs` declares these with one [`kind_table!`] line; the
//! loader's list of kinds then names the kind once (see "Adding a connector" in
//! docs/ARCHITECTURE.md).

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::{ConnectorError, PullConnector};
use crate::spec::problems::{Problems, Source};

/// What a kind's settings check may need besides its own table.
pub struct SettingsContext<'a> {
    /// The connector's file: where problems are reported.
    pub source: &'a Source<'a>,
    /// The directory of `idsync.toml`: relative paths and secret files resolve against it.
    pub base_dir: &'a std::path::Path,
    /// The connector's `enabled`: a disabled connector may be accepted with secrets that
    /// cannot be looked up here.
    pub enabled: bool,
}

/// The top-level keys a kind's user records hold, so `idsync check` can flag a mapping
/// expression that reads a key no record has (a typo empties the field for every user).
#[derive(Debug, Clone)]
pub enum UserKeys<'a> {
    /// Any key may be there (a file's JSON keys or CSV columns).
    Any,
    /// These keys, besides the ones the mapping context adds to every record; `hint` is
    /// said after a problem, such as where the kind's free-form attributes are read.
    Listed {
        keys: Vec<&'a str>,
        hint: &'static str,
    },
}

impl UserKeys<'_> {
    /// A fixed list of keys.
    pub fn listed(keys: &'static [&'static str], hint: &'static str) -> UserKeys<'static> {
        UserKeys::Listed {
            keys: keys.to_vec(),
            hint,
        }
    }
}

/// A kind's settings table as written (`[<kind>]` in a connector file) and what it
/// becomes. Implemented with [`kind_table!`].
pub trait KindTable: DeserializeOwned + std::fmt::Debug {
    /// What a connector of this kind must have when its table is missing (the whole
    /// message, shown at `kind`).
    const NEEDS: &'static str;
    /// Its settings, resolved and checked.
    type Settings: std::fmt::Debug + Clone + Send + Sync;

    /// Checks the table, recording every problem; the settings only when it has none.
    fn check(
        table: &Spanned<Self>,
        at: &SettingsContext<'_>,
        problems: &mut Problems,
    ) -> Option<Self::Settings>;

    /// The running connector.
    fn connect(settings: &Self::Settings) -> Result<Box<dyn PullConnector>, ConnectorError>;

    /// The keys of its user records.
    fn user_keys(settings: &Self::Settings) -> UserKeys<'_>;
}

/// Implements [`KindTable`] for a kind's raw table from the kind's parts:
///
/// ```text
/// kind_table!(RawOneLoginSettings => OneLoginSettings {
///     needs: NEEDS, check: check, user_keys: records::user_keys, connect: OneLoginConnector::new
/// });
/// ```
///
/// `check` is `fn(&Spanned<Raw>, &SettingsContext, &mut Problems) -> Option<Settings>`,
/// `user_keys` is `fn(&Settings) -> UserKeys`, `connect` is
/// `fn(&Settings) -> Result<impl PullConnector, ConnectorError>`.
macro_rules! kind_table {
    ($raw:ty => $settings:ty {
        needs: $needs:expr, check: $check:path, user_keys: $keys:path, connect: $connect:path $(,)?
    }) => {
        impl $crate::connectors::kind::KindTable for $raw {
            const NEEDS: &'static str = $needs;
            type Settings = $settings;

            fn check(
                table: &::toml::Spanned<Self>,
                at: &$crate::connectors::kind::SettingsContext<'_>,
                problems: &mut $crate::spec::problems::Problems,
            ) -> Option<$settings> {
                $check(table, at, problems)
            }

            fn connect(
                settings: &$settings,
            ) -> Result<
                Box<dyn $crate::connectors::PullConnector>,
                $crate::connectors::ConnectorError,
            > {
                Ok(Box::new($connect(settings)?))
            }

            fn user_keys(settings: &$settings) -> $crate::connectors::kind::UserKeys<'_> {
                $keys(settings)
            }
        }
    };
}
pub(crate) use kind_table;
