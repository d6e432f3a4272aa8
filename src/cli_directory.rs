//! `idsync users` and `idsync groups`: one page of the target directory's users or groups,
//! or one of them with its groups or members, read from the state database.

use anyhow::Result;
use clap::{Args, Subcommand};
use idsync::db::{Db, DbError};
use idsync::target::query;

use crate::Exit;
use crate::cli_output::{self, Format};

#[derive(Subcommand)]
pub enum ListShow {
    /// List them.
    List(ListFlags),
    /// Show one, by id or name.
    Show {
        /// The id, or the (case-insensitive) name.
        key: String,
        /// For groups: list effective members (nesting resolved) instead of direct ones.
        #[arg(long)]
        effective: bool,
        /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// The flags of `users list` and `groups list`: one page of one table.
#[derive(Args)]
pub struct ListFlags {
    /// Only this connector.
    #[arg(long)]
    connector: Option<String>,
    /// Show at most this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Skip this many first (the next page).
    #[arg(long, default_value_t = 0)]
    offset: i64,
    /// How to print: as a table or as JSON (the shapes are stable, see docs/cli.md).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl ListFlags {
    /// Reads this page with `list` and prints it with `print`.
    async fn show<T>(
        self,
        db: &Db,
        list: impl AsyncFnOnce(&sqlx::AnyPool, Option<&str>, i64, i64) -> Result<Vec<T>, DbError>,
        print: fn(&[T], Format) -> Result<()>,
    ) -> Result<u8> {
        let rows = list(
            db.pool(),
            self.connector.as_deref(),
            self.limit,
            self.offset,
        )
        .await?;
        print(&rows, self.format)?;
        Ok(0)
    }
}

pub async fn users_command(db: &Db, command: ListShow) -> Result<u8> {
    match command {
        ListShow::List(page) => {
            page.show(db, query::list_users, cli_output::print_users)
                .await
        }
        ListShow::Show { key, format, .. } => {
            let user = query::find_user(db.pool(), &key)
                .await?
                .ok_or_else(|| Exit::failed(format!("no user with id or user name `{key}`")))?;
            let (direct, effective) = query::user_groups(db.pool(), &user.id).await?;
            cli_output::print_user(&user, &direct, &effective, format)?;
            Ok(0)
        }
    }
}

pub async fn groups_command(db: &Db, command: ListShow) -> Result<u8> {
    match command {
        ListShow::List(page) => {
            page.show(db, query::list_groups, cli_output::print_groups)
                .await
        }
        ListShow::Show {
            key,
            effective,
            format,
        } => {
            let group = query::find_group(db.pool(), &key)
                .await?
                .ok_or_else(|| Exit::failed(format!("no group with id or name `{key}`")))?;
            let members = if effective {
                query::effective_members(db.pool(), &group.id).await?
            } else {
                query::direct_members(db.pool(), &group.id).await?
            };
            cli_output::print_group(&group, &members, effective, format)?;
            Ok(0)
        }
    }
}
