//! How the CLI prints: aligned tables for people, JSON (stable shapes, documented in
//! docs/cli.md) for scripts, and a progress bar on a terminal or plain log lines otherwise.

use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use idsync::store::runs::RunRecord;
use idsync::sync::{Progress, RunReport};
use idsync::target::query::{GroupRow, MemberRow, UserRow};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Shows a run's progress: a spinner with counts on a terminal, log lines otherwise.
pub struct ProgressDisplay {
    bar: Option<ProgressBar>,
    connector: String,
}

impl ProgressDisplay {
    pub fn new(interactive: bool, connector: &str) -> Self {
        let bar = interactive.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(connector.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        ProgressDisplay {
            bar,
            connector: connector.to_string(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for ProgressDisplay {
    fn records_read(&self, count: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("reading: {count} records"));
        }
    }

    fn phase(&self, name: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(name.to_string()),
            None => tracing::info!(connector = %self.connector, phase = name, "run phase"),
        }
    }
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows with columns padded to the widest cell.
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// Prints a list as JSON, or as a table of one row per item.
fn print_list<T: Serialize>(
    items: &[T],
    format: Format,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    if format == Format::Json {
        return print_json(items);
    }
    print_table(header, items.iter().map(row).collect());
    Ok(())
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

pub fn print_report(report: &RunReport, format: Format) -> Result<()> {
    if format == Format::Json {
        return print_json(report);
    }
    let c = &report.counts;
    let run = match report.run_id {
        Some(id) => format!("run {id}"),
        None => "dry run, nothing written".to_string(),
    };
    let read = match report.read_mode {
        Some(mode) => format!(", read {} records ({mode})", report.records_read),
        None => String::new(),
    };
    println!(
        "{}: {} ({run}{read})",
        report.connector,
        report.outcome.as_str()
    );
    println!(
        "  users:       {} created, {} updated, {} disabled, {} deleted",
        c.users_created, c.users_updated, c.users_disabled, c.users_deleted
    );
    println!(
        "  groups:      {} created, {} updated, {} deleted",
        c.groups_created, c.groups_updated, c.groups_deleted
    );
    println!(
        "  memberships: {} added, {} removed",
        c.memberships_added, c.memberships_removed
    );
    if report.excluded_users + report.excluded_groups > 0 {
        println!(
            "  filtered:    {} users and {} groups kept out by the mapping's filters",
            report.excluded_users, report.excluded_groups
        );
    }
    if !report.conflicts.is_empty() {
        println!("  conflicts:   {}", report.conflicts.len());
        for conflict in report.conflicts.iter().take(20) {
            println!(
                "    {} {:?} (external id {:?}): the name is held by {}",
                conflict.kind, conflict.name, conflict.external_id, conflict.held_by
            );
        }
    }
    if !report.warnings.is_empty() {
        println!("  warnings:    {}", report.warnings.len());
        for warning in report.warnings.iter().take(20) {
            println!("    {warning}");
        }
    }
    if report.dry_run && !report.preview.is_empty() {
        println!("  plan:");
        for line in &report.preview {
            println!("    {line}");
        }
    }
    if let Some(message) = &report.message {
        println!("  {message}");
    }
    Ok(())
}

pub fn print_runs(runs: &[RunRecord], format: Format) -> Result<()> {
    let header = [
        "ID",
        "CONNECTOR",
        "OPERATION",
        "STARTED",
        "OUTCOME",
        "READ",
        "USERS",
        "GROUPS",
        "MEMBERS",
        "CONFLICTS",
        "WARNINGS",
        "MESSAGE",
    ];
    print_list(runs, format, &header, |r| {
        let c = &r.counts;
        vec![
            r.id.to_string(),
            r.connector.clone(),
            r.operation.clone(),
            r.started_at.clone(),
            r.outcome.as_str().to_string(),
            r.records_read.to_string(),
            format!(
                "+{} ~{} -{}",
                c.users_created,
                c.users_updated,
                c.users_disabled + c.users_deleted
            ),
            format!(
                "+{} ~{} -{}",
                c.groups_created, c.groups_updated, c.groups_deleted
            ),
            format!("+{} -{}", c.memberships_added, c.memberships_removed),
            c.conflicts.to_string(),
            c.warnings.to_string(),
            r.message.clone().unwrap_or_default(),
        ]
    })
}

pub fn print_users(users: &[UserRow], format: Format) -> Result<()> {
    let header = [
        "USER NAME",
        "DISPLAY NAME",
        "EMAIL",
        "ACTIVE",
        "CONNECTOR",
        "ID",
    ];
    print_list(users, format, &header, |u| {
        vec![
            u.user_name.clone(),
            opt(&u.display_name),
            opt(&u.email),
            if u.active { "yes" } else { "no" }.to_string(),
            u.connector.clone(),
            u.id.clone(),
        ]
    })
}

#[derive(Serialize)]
struct UserDetail<'a> {
    #[serde(flatten)]
    user: &'a UserRow,
    groups: &'a [String],
    effective_groups: &'a [String],
}

pub fn print_user(
    user: &UserRow,
    direct: &[String],
    effective: &[String],
    format: Format,
) -> Result<()> {
    if format == Format::Json {
        return print_json(&UserDetail {
            user,
            groups: direct,
            effective_groups: effective,
        });
    }
    println!("id:            {}", user.id);
    println!("user name:     {}", user.user_name);
    println!("display name:  {}", opt(&user.display_name));
    println!("given name:    {}", opt(&user.given_name));
    println!("family name:   {}", opt(&user.family_name));
    println!("email:         {}", opt(&user.email));
    println!("active:        {}", user.active);
    println!(
        "connector:     {} (external id {})",
        user.connector, user.external_id
    );
    println!("created:       {}", user.created_at);
    println!("updated:       {}", user.updated_at);
    if let Some(removed) = &user.removed_at {
        println!("left source:   {removed}");
    }
    println!("groups:        {}", direct.join(", "));
    println!("effective:     {}", effective.join(", "));
    Ok(())
}

pub fn print_groups(groups: &[GroupRow], format: Format) -> Result<()> {
    let header = ["NAME", "MEMBERS", "DESCRIPTION", "CONNECTOR", "ID"];
    print_list(groups, format, &header, |g| {
        vec![
            g.name.clone(),
            g.direct_members.to_string(),
            opt(&g.description),
            g.connector.clone(),
            g.id.clone(),
        ]
    })
}

#[derive(Serialize)]
struct GroupDetail<'a> {
    #[serde(flatten)]
    group: &'a GroupRow,
    members: &'a [MemberRow],
    effective: bool,
}

pub fn print_group(
    group: &GroupRow,
    members: &[MemberRow],
    effective: bool,
    format: Format,
) -> Result<()> {
    if format == Format::Json {
        return print_json(&GroupDetail {
            group,
            members,
            effective,
        });
    }
    println!("id:           {}", group.id);
    println!("name:         {}", group.name);
    println!("description:  {}", opt(&group.description));
    println!(
        "connector:    {} (external id {})",
        group.connector, group.external_id
    );
    println!(
        "{} members ({}):",
        if effective { "effective" } else { "direct" },
        members.len()
    );
    let rows = members
        .iter()
        .map(|m| vec![m.kind.clone(), m.name.clone(), m.id.clone()])
        .collect();
    print_table(&["TYPE", "NAME", "ID"], rows);
    Ok(())
}
