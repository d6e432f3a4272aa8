//! The CSV format (users only): header mapping, row conversion and errors with line numbers.

use std::collections::HashSet;
use std::io::Read;

use serde_json::Value;

use super::*;
use crate::model::{Email, SourceUser};

/// A column the connector maps onto a model field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Id,
    UserName,
    GivenName,
    FamilyName,
    DisplayName,
    Email,
    Active,
}

impl Known {
    /// Recognises a header, case-insensitively.
    fn parse(header: &str) -> Option<Known> {
        match header.to_ascii_lowercase().as_str() {
            "id" => Some(Known::Id),
            "username" | "user_name" => Some(Known::UserName),
            "givenname" | "given_name" => Some(Known::GivenName),
            "familyname" | "family_name" => Some(Known::FamilyName),
            "displayname" | "display_name" => Some(Known::DisplayName),
            "email" => Some(Known::Email),
            "active" => Some(Known::Active),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Known::Id => "id",
            Known::UserName => "userName",
            Known::GivenName => "givenName",
            Known::FamilyName => "familyName",
            Known::DisplayName => "displayName",
            Known::Email => "email",
            Known::Active => "active",
        }
    }
}

/// The header row, resolved.
struct Columns {
    /// Every header as written (trimmed); empty ones are ignored.
    names: Vec<String>,
    id: usize,
    user_name: usize,
    given_name: Option<usize>,
    family_name: Option<usize>,
    display_name: Option<usize>,
    email: Option<usize>,
    active: Option<usize>,
}

impl Columns {
    fn from_headers(headers: &csv::StringRecord) -> Result<Columns, String> {
        let names: Vec<String> = headers.iter().map(str::to_owned).collect();
        let mut known: [Option<usize>; 7] = [None; 7];
        let mut seen = HashSet::new();
        for (index, name) in names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if let Some(field) = Known::parse(name) {
                let slot = &mut known[field as usize];
                if let Some(first) = *slot {
                    return Err(format!(
                        "columns `{}` and `{name}` both give {}",
                        names[first],
                        field.name()
                    ));
                }
                *slot = Some(index);
            }
            if !seen.insert(name.as_str()) {
                return Err(format!("duplicate column `{name}`"));
            }
        }
        let Some(id) = known[Known::Id as usize] else {
            return Err("missing required column `id`".into());
        };
        let Some(user_name) = known[Known::UserName as usize] else {
            return Err(
                "missing required column `userName` (also accepted: `user_name`, `username`)"
                    .into(),
            );
        };
        Ok(Columns {
            id,
            user_name,
            given_name: known[Known::GivenName as usize],
            family_name: known[Known::FamilyName as usize],
            display_name: known[Known::DisplayName as usize],
            email: known[Known::Email as usize],
            active: known[Known::Active as usize],
            names,
        })
    }

    fn user(&self, record: &csv::StringRecord) -> Result<SourceUser, String> {
        if record.len() != self.names.len() {
            return Err(format!(
                "row has {} fields but the header has {}",
                record.len(),
                self.names.len()
            ));
        }
        let cell = |index: usize| record.get(index).filter(|text| !text.is_empty());
        let optional = |index: Option<usize>| index.and_then(cell).map(str::to_owned);

        let external_id = cell(self.id).ok_or("empty id")?.to_owned();
        let label = format!("id {external_id:?}");
        let user_name = cell(self.user_name)
            .ok_or_else(|| format!("{label}: empty userName"))?
            .to_owned();
        let active = match self.active.and_then(cell) {
            None => true,
            Some(text) => parse_active(text).ok_or_else(|| {
                format!(
                    "{label}: invalid active value {text:?} (expected true/false, 1/0 or yes/no)"
                )
            })?,
        };
        let emails = optional(self.email)
            .map(|value| Email {
                value,
                kind: None,
                primary: true,
            })
            .into_iter()
            .collect();
        let attributes = self
            .names
            .iter()
            .zip(record.iter())
            .filter(|(name, text)| !name.is_empty() && !text.is_empty())
            .map(|(name, text)| (name.clone(), Value::String(text.to_owned())))
            .collect();
        Ok(SourceUser {
            external_id,
            user_name,
            given_name: optional(self.given_name),
            family_name: optional(self.family_name),
            display_name: optional(self.display_name),
            emails,
            active,
            attributes,
        })
    }
}

fn parse_active(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

pub(super) fn parse_csv<R: Read>(reader: R, out: &Outbox) -> Result<(), Stop> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv.headers().map_err(|err| csv_error(out, err))?.clone();
    let header_line = headers.position().map_or(1, |pos| pos.line());
    let columns = Columns::from_headers(&headers)
        .map_err(|message| out.malformed(header_line, 1, message))?;

    let mut record = csv::StringRecord::new();
    let mut batch = Vec::new();
    while csv
        .read_record(&mut record)
        .map_err(|err| csv_error(out, err))?
    {
        let line = record.position().map_or(0, |pos| pos.line());
        let user = columns
            .user(&record)
            .map_err(|message| out.malformed(line, 1, message))?;
        batch.push(user);
        if batch.len() >= BATCH_SIZE {
            out.send(SourceBatch::Users(std::mem::take(&mut batch)))?;
        }
    }
    if !batch.is_empty() {
        out.send(SourceBatch::Users(batch))?;
    }
    Ok(())
}

fn csv_error(out: &Outbox, err: csv::Error) -> Stop {
    let line = err.position().map_or(0, |pos| pos.line());
    let text = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(source) => out.io(source),
        csv::ErrorKind::Utf8 { err, .. } => out.malformed(
            line,
            1,
            format!("field {} is not valid UTF-8", err.field() + 1),
        ),
        _ => out.malformed(line, 1, text),
    }
}
