//! Paging helpers for the four providers' list endpoints.
//!
//! * Okta: RFC 8288 `Link` response headers with `rel="next"`; Okta sends
//!   several `Link` lines, other servers one comma-joined line.
//! * Graph: `@odata.nextLink` in the body, to be followed verbatim.
//! * Google: `nextPageToken` in the body, sent back as `pageToken`.
//! * Keycloak: `first`/`max` offsets; a short page ends the listing.

use reqwest::header::{HeaderMap, LINK};

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

/// Graph: the `@odata.nextLink` of a collection page (absolute URL).
pub fn odata_next_link(body: &serde_json::Value) -> Option<String> {
    non_empty_str(body, "@odata.nextLink")
}

/// Google: the `nextPageToken` of a list page.
pub fn google_next_page_token(body: &serde_json::Value) -> Option<String> {
    non_empty_str(body, "nextPageToken")
}

/// Keycloak: the `first` offset of the next page, or `None` when the page
/// just read (`page_len` items, asked with `first`/`max`) was the last one.
pub fn keycloak_next_first(first: u32, max: u32, page_len: usize) -> Option<u32> {
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
            google_next_page_token(&json!({"nextPageToken": "abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(google_next_page_token(&json!({"nextPageToken": ""})), None);
    }

    #[test]
    fn keycloak_offsets() {
        assert_eq!(keycloak_next_first(0, 100, 100), Some(100));
        assert_eq!(keycloak_next_first(100, 100, 99), None);
        assert_eq!(keycloak_next_first(0, 0, 0), None);
        assert_eq!(keycloak_next_first(u32::MAX, 1, 1), None);
    }
}
