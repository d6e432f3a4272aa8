//! Ranged retrieval of a multi-valued attribute (Active Directory's MaxValRange, 1,500 by
//! default): an entry with more values than the limit comes back with
//! `member;range=0-1499` instead of `member`, and the next values are asked for as
//! `member;range=1500-*` until a range ends in `*`.
//! See Microsoft's "Searching Using Range Retrieval" (ADSI documentation).

/// Where a returned attribute's values stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    /// `;range=<low>-*`: these are the last values.
    Last,
    /// `;range=<low>-<high>`: more values start at `high + 1`.
    Next(u64),
}

/// When `name` (as the server returned it) is `base;range=<low>-<high>` for `base`
/// (case-insensitive), where the values stop; `None` for any other attribute name.
pub fn parse(name: &str, base: &str) -> Option<RangeEnd> {
    let (attr, options) = name.split_once(';')?;
    if !attr.eq_ignore_ascii_case(base) {
        return None;
    }
    let option = options
        .split(';')
        .find_map(|o| strip_prefix_ignore_case(o, "range="))?;
    let (low, high) = option.split_once('-')?;
    low.parse::<u64>().ok()?;
    if high == "*" {
        return Some(RangeEnd::Last);
    }
    let high = high.parse::<u64>().ok()?;
    Some(RangeEnd::Next(high.checked_add(1)?))
}

/// The attribute to ask for the values from `start` on: `member;range=1500-*`.
pub fn request(base: &str, start: u64) -> String {
    format!("{base};range={start}-*")
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}
