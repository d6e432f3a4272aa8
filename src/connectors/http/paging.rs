//! The pager: where the next page of a listing is, in the four ways list endpoints say it,
//! and the check that no page is asked for twice.
//!
//! * RFC 8288 `Link` response headers with `rel="next"` ([`next_link_from_header`]); some
//!   servers send several `Link` lines, others one comma-joined line.
//! * An OData `@odata.nextLink` in the body, followed verbatim ([`odata_next_link`]).
//! * A page token in the body (`nextPageToken`), sent back as a query parameter
//!   ([`next_page_token`]).
//! * `first`/`max` offsets; a short page ends the listing ([`next_offset`]).
//!
//! [`Pages`] walks one listing over any of them: the kind asks for [`Pages::next_cursor`], reads
//! the page, and hands the cursor the page named to [`Pages::follow`], which refuses a
//! link or token already followed (a server that hands one out twice would make the
//! listing endless). Every link is still checked against the client's pinned origin when
//! it is requested ([`super::origin`]).

use std::collections::HashSet;

use reqwest::header::{HeaderMap, LINK};

/// Where a page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The listing's first page, asked with the kind's own URL and query.
    First,
    /// An absolute URL (a `Link` header or OData next link), carrying its own query.
    Link(String),
    /// A page token to send back.
    Token(String),
    /// A `first` offset.
    Offset(u32),
}

/// The cursor offered twice: following it would read pages already read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the listing points at a page already read")]
pub struct RepeatedPage;

/// One listing, page by page.
#[derive(Debug)]
pub struct Pages {
    next: Option<Cursor>,
    seen: HashSet<String>,
}

impl Pages {
    /// A listing starting at `first` ([`Cursor::First`] or [`Cursor::Offset`]`(0)`).
    pub fn start(first: Cursor) -> Pages {
        Pages {
            next: Some(first),
            seen: HashSet::new(),
        }
    }

    /// The page to read next, or `None` after the last one.
    pub fn next_cursor(&mut self) -> Option<Cursor> {
        self.next.take()
    }

    /// The page just read named `next` (`None`: it was the last); `current` is where it
    /// was read from, so a link to itself is refused too.
    pub fn follow(&mut self, current: &str, next: Option<Cursor>) -> Result<(), RepeatedPage> {
        self.seen.insert(current.to_string());
        if let Some(Cursor::Link(key) | Cursor::Token(key)) = &next
            && !self.seen.insert(key.clone())
        {
            return Err(RepeatedPage);
        }
        self.next = next;
        Ok(())
    }

    /// The page just read at `current` links to the next one at `next` (`Link` headers,
    /// `@odata.nextLink`): whether that page is new.
    pub fn follow_link(&mut self, current: &str, next: &str) -> bool {
        self.follow(current, Some(Cursor::Link(next.to_string())))
            .is_ok()
    }

    /// The page just read at offset `first` (asked with `max`) held `page_len` items:
    /// a full page is followed by the next offset, a short or empty one ends the listing.
    pub fn follow_offset(&mut self, first: u32, max: u32, page_len: usize) {
        self.next = next_offset(first, max, page_len)
            .filter(|_| page_len > 0)
            .map(Cursor::Offset);
    }
}

/// The `rel="next"` target of the response's `Link` header(s), if any.
pub fn next_link_from_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_link_values)
        .find_map(|link| {
            let (target, params) = parse_link_value(link)?;
            params_have_next(params).then(|| target.to_string())
        })
}

/// Splits one header value into link-values at commas outside `<...>` and quotes.
fn split_link_values(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_angle, mut in_quote) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            '"' if !in_angle => in_quote = !in_quote,
            ',' if !in_angle && !in_quote => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// `<target>; params` → (target, params).
fn parse_link_value(link: &str) -> Option<(&str, &str)> {
    let link = link.trim();
    let rest = link.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Whether the parameters contain `rel=next` (quoted or not, possibly among
/// several space-separated relation types).
fn params_have_next(params: &str) -> bool {
    params.split(';').any(|param| {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("rel")
            && value
                .trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|rel| rel.eq_ignore_ascii_case("next"))
    })
}

/// The `@odata.nextLink` of an OData collection page (absolute URL).
pub fn odata_next_link(body: &serde_json::Value) -> Option<String> {
    non_empty_str(body, "@odata.nextLink")
}

/// The `nextPageToken` of a list page.
pub fn next_page_token(body: &serde_json::Value) -> Option<String> {
    non_empty_str(body, "nextPageToken")
}

/// The `first` offset of the next page, or `None` when the page just read (`page_len`
/// items, asked with `first`/`max`) was the last one.
pub fn next_offset(first: u32, max: u32, page_len: usize) -> Option<u32> {
    if max == 0 || page_len < max as usize {
        return None;
    }
    first.checked_add(max)
}

fn non_empty_str(body: &serde_json::Value, key: &str) -> Option<String> {
    body.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod unit {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(LINK, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn okta_separate_link_lines() {
        let h = headers(&[
            r#"<https://acme.okta.com/api/v1/users?limit=200>; rel="self""#,
            r#"<https://acme.okta.com/api/v1/users?after=00u1%2Bx&limit=200>; rel="next""#,
        ]);
        assert_eq!(
            next_link_from_header(&h).as_deref(),
            Some("https://acme.okta.com/api/v1/users?after=00u1%2Bx&limit=200")
        );
    }

    #[test]
    fn comma_joined_and_unquoted() {
        let h = headers(&[
            r#"<https://x.test/a?b=1,2>; rel="self", <https://x.test/a?after=9>; rel=next"#,
        ]);
        assert_eq!(
            next_link_from_header(&h).as_deref(),
            Some("https://x.test/a?after=9")
        );
        let h = headers(&[r#"<https://x.test/p2>; title="a, b"; rel="prefetch next""#]);
        assert_eq!(
            next_link_from_header(&h).as_deref(),
            Some("https://x.test/p2")
        );
    }

    #[test]
    fn no_next_link() {
        assert_eq!(next_link_from_header(&HeaderMap::new()), None);
        let h = headers(&[r#"<https://x.test/a>; rel="self""#, "garbage"]);
        assert_eq!(next_link_from_header(&h), None);
    }

    #[test]
    fn body_cursors() {
        let page = json!({"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=X"});
        assert_eq!(
            odata_next_link(&page).as_deref(),
            Some("https://graph.microsoft.com/v1.0/users?$skiptoken=X")
        );
        assert_eq!(odata_next_link(&json!({"value": []})), None);
        assert_eq!(
            next_page_token(&json!({"nextPageToken": "abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(next_page_token(&json!({"nextPageToken": ""})), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(next_offset(0, 100, 100), Some(100));
        assert_eq!(next_offset(100, 100, 99), None);
        assert_eq!(next_offset(0, 0, 0), None);
        assert_eq!(next_offset(u32::MAX, 1, 1), None);
    }

    #[test]
    fn pages_refuse_a_cursor_twice() {
        let mut pages = Pages::start(Cursor::First);
        assert_eq!(pages.next_cursor(), Some(Cursor::First));
        let a = Some(Cursor::Token("a".to_string()));
        pages.follow("", a.clone()).unwrap();
        assert_eq!(pages.next_cursor(), a);
        pages
            .follow("a", Some(Cursor::Token("b".to_string())))
            .unwrap();
        assert_eq!(pages.follow("b", a), Err(RepeatedPage));
        let mut pages = Pages::start(Cursor::First);
        let link = Some(Cursor::Link("https://x.test/p".to_string()));
        assert_eq!(pages.follow("https://x.test/p", link), Err(RepeatedPage));
        pages.follow("https://x.test/q", None).unwrap();
        assert_eq!(pages.next_cursor(), None);
        let mut pages = Pages::start(Cursor::Offset(0));
        assert_eq!(pages.next_cursor(), Some(Cursor::Offset(0)));
        pages.follow_offset(0, 2, 2);
        assert_eq!(pages.next_cursor(), Some(Cursor::Offset(2)));
        pages.follow_offset(2, 2, 1);
        assert_eq!(pages.next_cursor(), None);
    }
}
