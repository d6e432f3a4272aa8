//! Entries as the LDAP target compares them, and the diff of what the directory should hold
//! against what it holds: the fewest writes that make one into the other. An unchanged
//! entry gets no write; a membership change is an add or delete of member values, never a
//! replace; a renamed or moved entry is a modrdn. Entries idsync did not create are never
//! written (they are reported as conflicts).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::connectors::ldap::dn;

/// An entry: its DN and attributes (names as idsync writes them; values in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<String>>,
}

/// An entry as read from the directory.
#[derive(Debug, Clone)]
pub struct Found {
    pub entry: Entry,
    /// Created by idsync's bind account (its `creatorsName`).
    pub ours: bool,
}

/// A change of one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrChange {
    /// The attribute holds exactly these values (none: it is removed).
    Replace(String, Vec<String>),
    Add(String, Vec<String>),
    Delete(String, Vec<String>),
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Renames (and with `superior`, moves) `dn` to `rdn`, dropping the old RDN value.
    Rename {
        dn: String,
        rdn: String,
        superior: Option<String>,
    },
    Add(Entry),
    Modify {
        dn: String,
        changes: Vec<AttrChange>,
    },
    Delete {
        dn: String,
    },
}

impl Write {
    pub fn dn(&self) -> &str {
        match self {
            Write::Rename { dn, .. } | Write::Modify { dn, .. } | Write::Delete { dn } => dn,
            Write::Add(entry) => &entry.dn,
        }
    }
}

/// The writes of one convergence, in the order they are sent: each step's writes may go
/// out together, a step starts when the one before has been answered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Writes {
    pub renames: Vec<Write>,
    /// Users (added or modified), before the groups that name them.
    pub users: Vec<Write>,
    pub groups: Vec<Write>,
    pub deletes: Vec<Write>,
    /// DNs idsync should write but did not create (left alone).
    pub foreign: Vec<String>,
}

impl Writes {
    pub fn total(&self) -> usize {
        self.renames.len() + self.users.len() + self.groups.len() + self.deletes.len()
    }
}

/// Attributes compared as DNs (their values are normalised before comparing).
pub fn is_dn_valued(attr: &str) -> bool {
    attr.eq_ignore_ascii_case("member") || attr.eq_ignore_ascii_case("uniqueMember")
}

/// The diff. `desired_users` and `desired_groups` are what the directory should hold;
/// `found` every entry under the containers idsync writes (by normalised DN); `moved` the
/// DN each target record had before this run where it differs (target record's new DN,
/// normalised -> old DN), so that a rename is a modrdn.
pub fn diff(
    desired_users: &[Entry],
    desired_groups: &[Entry],
    found: &HashMap<String, Found>,
    moved: &HashMap<String, String>,
) -> Writes {
    let mut writes = Writes::default();
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    for (desired, is_user) in desired_users
        .iter()
        .map(|e| (e, true))
        .chain(desired_groups.iter().map(|e| (e, false)))
    {
        let key = normalized(&desired.dn);
        claimed.insert(key.clone());
        let out = match is_user {
            true => &mut writes.users,
            false => &mut writes.groups,
        };
        match found.get(&key) {
            Some(have) if !have.ours => writes.foreign.push(desired.dn.clone()),
            Some(have) => out.extend(modify(&have.entry, desired)),
            None => match moved
                .get(&key)
                .and_then(|old| found.get(&normalized(old)).map(|have| (old, have)))
                .filter(|(_, have)| have.ours)
            {
                Some((old, have)) => {
                    claimed.insert(normalized(old));
                    writes.renames.push(rename(&have.entry.dn, &desired.dn));
                    let renamed = Entry {
                        dn: desired.dn.clone(),
                        attrs: renamed_attrs(&have.entry, &desired.dn),
                    };
                    out.extend(modify(&renamed, desired));
                }
                None => out.push(Write::Add(desired.clone())),
            },
        }
    }
    let mut stale: Vec<&Found> = found
        .iter()
        .filter(|(key, have)| have.ours && !claimed.contains(*key))
        .map(|(_, have)| have)
        .collect();
    stale.sort_by(|a, b| a.entry.dn.cmp(&b.entry.dn));
    writes.deletes = stale
        .into_iter()
        .map(|have| Write::Delete {
            dn: have.entry.dn.clone(),
        })
        .collect();
    writes.foreign.sort();
    writes
}

/// A DN in the form entries are matched by (the original text when it does not parse).
pub fn normalized(text: &str) -> String {
    dn::normalize(text).unwrap_or_else(|| text.to_ascii_lowercase())
}

/// The modrdn from `old` to `new`: the new DN's first RDN, and its parent when that changed.
fn rename(old: &str, new: &str) -> Write {
    let (rdn, parent) = split_first(new);
    let (_, old_parent) = split_first(old);
    Write::Rename {
        dn: old.to_owned(),
        rdn: rdn.to_owned(),
        superior: (normalized(parent) != normalized(old_parent)).then(|| parent.to_owned()),
    }
}

/// A DN's first RDN and the rest (the first unescaped comma splits them).
pub fn split_first(text: &str) -> (&str, &str) {
    let bytes = text.as_bytes();
    let mut escaped = false;
    for (i, b) in bytes.iter().enumerate() {
        match (escaped, *b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b',') => return (text[..i].trim(), text[i + 1..].trim()),
            _ => {}
        }
    }
    (text.trim(), "")
}

/// The attributes an entry has after a modrdn to `new_dn` that drops the old RDN value:
/// the RDN attribute holds the new value instead of the old one.
fn renamed_attrs(entry: &Entry, new_dn: &str) -> BTreeMap<String, Vec<String>> {
    let mut attrs = entry.attrs.clone();
    let (old_rdn, _) = split_first(&entry.dn);
    let (new_rdn, _) = split_first(new_dn);
    let (Some((old_attr, old_value)), Some((new_attr, new_value))) =
        (old_rdn.split_once('='), new_rdn.split_once('='))
    else {
        return attrs;
    };
    if let Some(values) = find_attr_mut(&mut attrs, old_attr.trim()) {
        let old_value = unescape(old_value.trim());
        values.retain(|v| *v != old_value);
    }
    let new_value = unescape(new_value.trim());
    match find_attr_mut(&mut attrs, new_attr.trim()) {
        Some(values) if !values.contains(&new_value) => values.push(new_value),
        Some(_) => {}
        None => {
            attrs.insert(new_attr.trim().to_owned(), vec![new_value]);
        }
    }
    attrs
}

fn find_attr_mut<'a>(
    attrs: &'a mut BTreeMap<String, Vec<String>>,
    name: &str,
) -> Option<&'a mut Vec<String>> {
    attrs
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, values)| values)
}

/// An RDN value without its RFC 4514 escapes (`\,` and `\2C` both become `,`).
fn unescape(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len());
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            });
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The modify that makes `have` hold `want`'s attributes (none when it already does).
/// Object classes are written when an entry is added and not changed afterwards.
fn modify(have: &Entry, want: &Entry) -> Option<Write> {
    let mut changes = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for name in want.attrs.keys().chain(have.attrs.keys()) {
        if !name.eq_ignore_ascii_case("objectClass") {
            names.insert(name.to_ascii_lowercase());
        }
    }
    let empty = Vec::new();
    for lower in names {
        let (want_name, want_values) = lookup(&want.attrs, &lower).unwrap_or((&lower, &empty));
        let have_values = lookup(&have.attrs, &lower).map_or(&empty, |(_, v)| v);
        if is_dn_valued(&lower) {
            let have_set: HashMap<String, &String> =
                have_values.iter().map(|v| (normalized(v), v)).collect();
            let want_set: HashMap<String, &String> =
                want_values.iter().map(|v| (normalized(v), v)).collect();
            let mut add: Vec<String> = want_values
                .iter()
                .filter(|v| !have_set.contains_key(&normalized(v)))
                .cloned()
                .collect();
            let mut delete: Vec<String> = have_values
                .iter()
                .filter(|v| !want_set.contains_key(&normalized(v)))
                .cloned()
                .collect();
            add.dedup();
            delete.dedup();
            // Values are added before others are deleted, so that a group never passes
            // through having no member (which groupOfNames does not allow).
            if !add.is_empty() {
                changes.push(AttrChange::Add(want_name.clone(), add));
            }
            if !delete.is_empty() {
                changes.push(AttrChange::Delete(want_name.clone(), delete));
            }
        } else {
            let same = want_values.len() == have_values.len()
                && want_values.iter().all(|v| have_values.contains(v));
            if !same {
                changes.push(AttrChange::Replace(want_name.clone(), want_values.clone()));
            }
        }
    }
    (!changes.is_empty()).then(|| Write::Modify {
        dn: have.dn.clone(),
        changes,
    })
}

/// An attribute by lower-case name: its name as the map spells it, and its values.
fn lookup<'a>(
    attrs: &'a BTreeMap<String, Vec<String>>,
    lower: &str,
) -> Option<(&'a String, &'a Vec<String>)> {
    attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        Entry {
            dn: dn.to_owned(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    fn found(entries: &[(Entry, bool)]) -> HashMap<String, Found> {
        entries
            .iter()
            .map(|(e, ours)| {
                (
                    normalized(&e.dn),
                    Found {
                        entry: e.clone(),
                        ours: *ours,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn an_unchanged_entry_gets_no_write_even_when_the_server_spells_names_differently() {
        let want = entry(
            "uid=ann,ou=people,dc=x",
            &[("mail", &["a@x"]), ("cn", &["Ann"])],
        );
        let have = entry(
            "UID=ann, OU=People,DC=x",
            &[
                ("MAIL", &["a@x"]),
                ("cn", &["Ann"]),
                ("objectClass", &["top"]),
            ],
        );
        let writes = diff(&[want], &[], &found(&[(have, true)]), &HashMap::new());
        assert_eq!(writes, Writes::default());
    }

    #[test]
    fn a_membership_change_adds_and_deletes_values_instead_of_replacing() {
        let want = entry(
            "cn=staff,ou=groups,dc=x",
            &[("member", &["uid=a,ou=people,dc=x", "uid=c,ou=people,dc=x"])],
        );
        let have = entry(
            "cn=staff,ou=groups,dc=x",
            &[("member", &["UID=a,ou=People,dc=x", "uid=b,ou=people,dc=x"])],
        );
        let writes = diff(&[], &[want], &found(&[(have, true)]), &HashMap::new());
        assert_eq!(
            writes.groups,
            vec![Write::Modify {
                dn: "cn=staff,ou=groups,dc=x".into(),
                changes: vec![
                    AttrChange::Add("member".into(), vec!["uid=c,ou=people,dc=x".into()]),
                    AttrChange::Delete("member".into(), vec!["uid=b,ou=people,dc=x".into()]),
                ],
            }]
        );
    }

    #[test]
    fn a_renamed_user_is_a_modrdn_then_only_what_else_changed() {
        let want = entry(
            "uid=bob,ou=people,dc=x",
            &[("uid", &["bob"]), ("mail", &["b@x"])],
        );
        let have = entry(
            "uid=rob,ou=people,dc=x",
            &[("uid", &["rob"]), ("mail", &["r@x"])],
        );
        let moved = HashMap::from([(normalized(&want.dn), "uid=rob,ou=people,dc=x".to_owned())]);
        let writes = diff(&[want], &[], &found(&[(have, true)]), &moved);
        assert_eq!(
            writes.renames,
            vec![Write::Rename {
                dn: "uid=rob,ou=people,dc=x".into(),
                rdn: "uid=bob".into(),
                superior: None,
            }]
        );
        assert_eq!(
            writes.users,
            vec![Write::Modify {
                dn: "uid=bob,ou=people,dc=x".into(),
                changes: vec![AttrChange::Replace("mail".into(), vec!["b@x".into()])],
            }]
        );
        assert!(writes.deletes.is_empty());
    }

    #[test]
    fn a_move_names_the_new_container() {
        let want = entry("uid=ann,ou=disabled,dc=x", &[("uid", &["ann"])]);
        let have = entry("uid=ann,ou=people,dc=x", &[("uid", &["ann"])]);
        let moved = HashMap::from([(normalized(&want.dn), have.dn.clone())]);
        let writes = diff(&[want], &[], &found(&[(have, true)]), &moved);
        assert_eq!(
            writes.renames,
            vec![Write::Rename {
                dn: "uid=ann,ou=people,dc=x".into(),
                rdn: "uid=ann".into(),
                superior: Some("ou=disabled,dc=x".into()),
            }]
        );
        assert!(writes.users.is_empty());
    }

    #[test]
    fn entries_of_others_are_never_written_or_deleted() {
        let want = entry("uid=ann,ou=people,dc=x", &[("mail", &["new@x"])]);
        let theirs = entry("uid=ann,ou=people,dc=x", &[("mail", &["old@x"])]);
        let other = entry("uid=zed,ou=people,dc=x", &[]);
        let writes = diff(
            &[want],
            &[],
            &found(&[(theirs, false), (other, false)]),
            &HashMap::new(),
        );
        assert_eq!(writes.total(), 0);
        assert_eq!(writes.foreign, vec!["uid=ann,ou=people,dc=x".to_owned()]);
    }

    #[test]
    fn missing_entries_are_added_and_stale_ones_of_ours_deleted() {
        let want = entry("uid=new,ou=people,dc=x", &[("uid", &["new"])]);
        let stale = entry("uid=old,ou=people,dc=x", &[("uid", &["old"])]);
        let writes = diff(
            std::slice::from_ref(&want),
            &[],
            &found(&[(stale, true)]),
            &HashMap::new(),
        );
        assert_eq!(writes.users, vec![Write::Add(want)]);
        assert_eq!(
            writes.deletes,
            vec![Write::Delete {
                dn: "uid=old,ou=people,dc=x".into()
            }]
        );
    }

    #[test]
    fn an_attribute_no_longer_wanted_is_removed() {
        let want = entry("uid=a,dc=x", &[("uid", &["a"])]);
        let have = entry(
            "uid=a,dc=x",
            &[
                ("uid", &["a"]),
                ("pwdAccountLockedTime", &["000001010000Z"]),
            ],
        );
        let writes = diff(&[want], &[], &found(&[(have, true)]), &HashMap::new());
        assert_eq!(
            writes.users,
            vec![Write::Modify {
                dn: "uid=a,dc=x".into(),
                changes: vec![AttrChange::Replace("pwdaccountlockedtime".into(), vec![])],
            }]
        );
    }

    #[test]
    fn rdn_values_are_split_and_unescaped() {
        assert_eq!(
            split_first("uid=a\\,b,ou=p,dc=x"),
            ("uid=a\\,b", "ou=p,dc=x")
        );
        assert_eq!(unescape("a\\,b\\2Cc"), "a,b,c");
    }
}
