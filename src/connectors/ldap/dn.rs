//! DN normalisation (RFC 4514), so a member DN matches the entry it names whatever its case
//! or spacing: `CN=Ann Lee , OU=People,dc=Example,DC=com` and
//! `cn=ann lee,ou=people,dc=example,dc=com` are the same entry.
//!
//! The normal form: attribute types lower-cased (a few common OIDs become their names),
//! spaces around `=`, `,` and `+` dropped, values unescaped, lower-cased (the naming
//! attributes in use, `cn`, `uid`, `ou`, `dc`, `o`, match case-insensitively) with runs of
//! inner spaces collapsed, and the AVAs of a multi-valued RDN sorted. It is a key for
//! lookups only, never sent to a server.

/// Common naming attributes written as OIDs, with their names.
const OID_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "cn"),
    ("2.5.4.6", "c"),
    ("2.5.4.7", "l"),
    ("2.5.4.8", "st"),
    ("2.5.4.10", "o"),
    ("2.5.4.11", "ou"),
    ("0.9.2342.19200300.100.1.1", "uid"),
    ("0.9.2342.19200300.100.1.25", "dc"),
];

/// The normal form of `dn`; `None` when it is not a DN (an AVA without `=`, an escape
/// that ends the string).
pub fn normalize(dn: &str) -> Option<String> {
    // Most DNs have no escapes, multi-valued RDNs or special characters: one pass.
    if !dn.contains(['\\', '+', '#', '"', '<', '>', ';']) {
        return normalize_plain(dn);
    }
    normalize_escaped(dn)
}

/// [`normalize_escaped`] for a DN without escapes or special characters, without its
/// intermediate strings (a read normalises every user's DN and every member DN).
fn normalize_plain(dn: &str) -> Option<String> {
    let mut out = String::with_capacity(dn.len());
    for rdn in dn.trim().split(',') {
        let (kind, value) = rdn.split_once('=')?;
        let kind = kind.trim();
        if kind.is_empty() || value.contains('=') {
            return normalize_escaped(dn);
        }
        if !out.is_empty() {
            out.push(',');
        }
        match OID_NAMES
            .iter()
            .find(|(oid, _)| kind.eq_ignore_ascii_case(oid))
        {
            Some((_, name)) => out.push_str(name),
            None if kind.contains('.') => return normalize_escaped(dn),
            None => out.extend(kind.chars().map(|c| c.to_ascii_lowercase())),
        }
        out.push('=');
        for (i, word) in value.split_whitespace().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.extend(word.chars().flat_map(char::to_lowercase));
        }
    }
    Some(out)
}

/// The general case: escapes, multi-valued RDNs, OIDs.
pub(super) fn normalize_escaped(dn: &str) -> Option<String> {
    let mut rdns = Vec::new();
    for rdn in split_unescaped(dn.trim(), ',')? {
        if rdn.trim().is_empty() {
            // `dc=a,,dc=b` or a trailing comma.
            return None;
        }
        let mut avas = Vec::new();
        for ava in split_unescaped(&rdn, '+')? {
            let (kind, value) = ava.split_once('=')?;
            let kind = attribute_type(kind.trim())?;
            avas.push(format!("{kind}={}", value_key(value.trim())?));
        }
        avas.sort();
        rdns.push(avas.join("+"));
    }
    Some(rdns.join(","))
}

/// Splits at each `separator` not escaped by a backslash; the escapes stay in the parts.
/// Whether the entry named `dn` is `base` or below it (both in the normal form); with
/// `one_level`, only a direct child of `base`: what a search of `base` with that scope
/// can find.
pub fn under(dn: &str, base: &str, one_level: bool) -> bool {
    let (Some(dn), Some(base)) = (split_unescaped(dn, ','), split_unescaped(base, ',')) else {
        return false;
    };
    // The empty DN (the root) is above everything.
    let base: &[String] = if base == [""] { &[] } else { &base };
    dn.len() >= base.len()
        && dn[dn.len() - base.len()..] == *base
        && (!one_level || dn.len() == base.len() + 1)
}

fn split_unescaped(text: &str, separator: char) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            current.push(chars.next()?);
        } else if c == separator {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    Some(parts)
}

/// A lower-cased attribute type; OIDs (with or without `oid.`) of common names become the
/// name.
fn attribute_type(kind: &str) -> Option<String> {
    if kind.is_empty() {
        return None;
    }
    let lower = kind.to_ascii_lowercase();
    let bare = lower.strip_prefix("oid.").unwrap_or(&lower);
    Some(
        OID_NAMES
            .iter()
            .find(|(oid, _)| *oid == bare)
            .map_or(bare, |(_, name)| name)
            .to_owned(),
    )
}

/// An attribute value unescaped (`\,`, `\"`, `\2C`...), lower-cased, its inner runs of
/// white space made one space and then re-escaped where the normal form needs it. A
/// `#`-hex (BER) value is kept as its lower-cased hex.
fn value_key(value: &str) -> Option<String> {
    if value.starts_with('#') {
        return Some(value.to_ascii_lowercase());
    }
    let mut bytes = Vec::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let first = chars.next()?;
        match first.to_digit(16) {
            Some(high) if !matches!(first, ' ' | '"' | '#' | '+' | ',' | ';' | '<' | '=') => {
                let low = chars.next()?.to_digit(16)?;
                bytes.push(u8::try_from(high * 16 + low).ok()?);
            }
            _ => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    let text = String::from_utf8(bytes).ok()?.to_lowercase();
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(collapsed.len());
    for c in collapsed.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Some(out)
}
