//! `database_url` as configured, made independent of the working directory: a relative
//! SQLite path is resolved against the directory of `idsync.toml`.

use std::path::Path;

/// Makes a relative sqlite path absolute against `base_dir`
/// (`sqlite://state.db` or `sqlite:state.db` become
/// `sqlite:///etc/idsync/state.db`), keeping any `?query`. Leaves
/// `sqlite::memory:`, absolute sqlite paths and `postgres://` /
/// `postgresql://` URLs as they are. Errors never quote the URL, which may
/// hold a password.
pub(super) fn normalize_database_url(url: &str, base_dir: &Path) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err("database_url must start with sqlite: or postgres://".to_owned());
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (database, query) = match rest.split_once('?') {
        Some((database, query)) => (database, Some(query)),
        None => (rest, None),
    };
    if database == ":memory:" || database.starts_with('/') {
        return Ok(url.to_owned());
    }
    if database.is_empty() {
        return Err("database_url names no sqlite database file".to_owned());
    }
    let Some(decoded) = percent_decode(database) else {
        return Err("database_url has a malformed %-escape in its sqlite path".to_owned());
    };
    let absolute = crate::config::resolve(base_dir, Path::new(&decoded));
    let Some(absolute) = absolute.to_str() else {
        return Err("the sqlite database path is not valid UTF-8".to_owned());
    };
    let mut normalized = format!("sqlite://{}", percent_encode(absolute));
    if let Some(query) = query {
        normalized.push('?');
        normalized.push_str(query);
    }
    Ok(normalized)
}

/// Decodes `%XX` escapes (as sqlx does for sqlite paths); `None` when an
/// escape is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes the characters that would end or garble the path part of a
/// sqlite URL: `%`, `?` and `#`.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}
