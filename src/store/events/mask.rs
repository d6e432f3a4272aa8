//! Keeping secrets out of the event log and the request traces: the values of secret keys
//! (`password`, `clientSecret`, `access_token`, ...) are replaced by `[redacted]` in JSON
//! bodies, in bodies that are not valid JSON (cut, broken, form-encoded or plain text),
//! and in request paths and query strings.
//!
//! Valid JSON is redacted by structure. Anything else gets a conservative textual pass: a
//! secret-looking key followed by `=` or `:` loses its value, whatever the quoting, so a
//! truncated `{"password":"hunt` logs no part of the password.

use serde_json::Value;

/// What a secret value is replaced with.
pub const MASK: &str = "[redacted]";

/// Key endings (compared lower-case, letters and digits only) whose values are secret.
const SECRET_KEYS: [&str; 8] = [
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "apikey",
    "credential",
    "credentials",
];

/// Whether `key` names a secret: `password`, `userPassword`, `client_secret`,
/// `access-token`, `urn:...:User:password`, `user[password]`, `user%5Bpassword%5D`.
pub fn is_secret_key(key: &str) -> bool {
    let decoded = percent_decode(key);
    let normal: String = decoded
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !normal.is_empty() && SECRET_KEYS.iter().any(|s| normal.ends_with(s))
}

/// `%XX` escapes decoded (others kept as they are), for recognising keys only.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces the values of secret keys at any depth, and the `value` of a PATCH operation
/// whose `path` names a secret (`{"op":"replace","path":"password","value":"..."}`).
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let secret_path = map.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("path") && v.as_str().is_some_and(is_secret_key)
            });
            for (key, item) in map.iter_mut() {
                if is_secret_key(key) || (secret_path && key.eq_ignore_ascii_case("value")) {
                    *item = Value::String(MASK.into());
                } else {
                    redact(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `text` with the value of every secret key masked: `"password": "x"` (even unterminated),
/// `password=x` (form fields, query parameters), `Authorization: Bearer x` (to the line's
/// end). When a PATCH-like `"path": "password"` appears, every `"value"` is masked too.
pub fn mask_text(text: &str) -> String {
    let (masked, saw_secret_path) = scan(text, false);
    if saw_secret_path {
        scan(text, true).0
    } else {
        masked
    }
}

/// The most of a request target (path and query) that is logged or traced.
pub const TARGET_CAP_BYTES: usize = 2 * 1024;

/// A request target (path and query) as it may be logged: cut at [`TARGET_CAP_BYTES`]
/// first (a URI may be tens of kilobytes, sent before any authentication), then masked.
pub fn mask_target(path: &str, query: Option<&str>) -> String {
    let target = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let total = target.len();
    let mut cut = total.min(TARGET_CAP_BYTES);
    while !target.is_char_boundary(cut) {
        cut -= 1;
    }
    let masked = mask_text(&target[..cut]);
    if cut < total {
        format!("{masked}…[cut: {total} bytes in all]")
    } else {
        masked
    }
}

/// Bytes a bare (unquoted) key is made of.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'%')
}

/// One masking pass; also says whether a `"path"` naming a secret was seen.
fn scan(text: &str, mask_values: bool) -> (String, bool) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut saw_secret_path = false;
    let mut i = 0;
    // Inside a quoted string that turned out not to be a key, only bare keys are looked
    // for (`"see token=x"`); a quote there never starts a new string scan, which keeps
    // the pass linear however many quotes and escapes a hostile body holds.
    let mut bare_only_until = 0;
    while i < bytes.len() {
        count_step();
        let quoted = bytes[i] == b'"' && i >= bare_only_until;
        let (key, key_end) = if quoted {
            let end = string_end(bytes, i);
            let inner_end = if end > i + 1 && bytes[end - 1] == b'"' {
                end - 1
            } else {
                end
            };
            (&text[i + 1..inner_end], end)
        } else if is_key_byte(bytes[i]) && (i == 0 || !is_key_byte(bytes[i - 1])) {
            let mut end = i;
            while end < bytes.len() && is_key_byte(bytes[end]) {
                end += 1;
            }
            (&text[i..end], end)
        } else {
            i += 1;
            continue;
        };
        // A bare key right before a quote (`password":`) is a quoted key whose opening
        // quote closed a previous, unbalanced string: the separator comes after the quote.
        let after_key = if !quoted && bytes.get(key_end) == Some(&b'"') {
            key_end + 1
        } else {
            key_end
        };
        let separator = skip_blanks(bytes, after_key);
        let Some(&sep) = bytes.get(separator) else {
            break;
        };
        if sep != b':' && sep != b'=' {
            // Not a key: look inside (a quoted value may itself hold `token=...`).
            if quoted {
                bare_only_until = key_end;
                i += 1;
            } else {
                i = key_end;
            }
            continue;
        }
        let value_start = skip_blanks(bytes, separator + 1);
        if quoted && key.eq_ignore_ascii_case("path") && bytes.get(value_start) == Some(&b'"') {
            let end = string_end(bytes, value_start);
            let inner = text[value_start + 1..end].trim_end_matches('"');
            saw_secret_path |= is_secret_key(inner);
        }
        let secret = is_secret_key(key) || (mask_values && key.eq_ignore_ascii_case("value"));
        if !secret {
            i = key_end;
            continue;
        }
        let value_end = if !quoted && sep == b':' && bytes.get(value_start) != Some(&b'"') {
            // `Authorization: Bearer x`, `password: x`: the rest of the line.
            line_end(bytes, value_start)
        } else {
            value_end(bytes, value_start)
        };
        out.push_str(&text[copied..value_start]);
        if bytes
            .get(value_start)
            .is_some_and(|b| matches!(b, b'"' | b'{' | b'['))
        {
            out.push('"');
            out.push_str(MASK);
            out.push('"');
        } else {
            out.push_str(MASK);
        }
        copied = value_end;
        i = value_end.max(i + 1);
    }
    out.push_str(&text[copied.min(text.len())..]);
    (out, saw_secret_path)
}

#[cfg(test)]
thread_local! {
    /// Bytes visited by the scanner, for the linear-time test.
    static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_step() {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + 1));
}

/// Spaces and tabs (not line ends) from `i`.
fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// The end (after the closing quote) of the string starting at `start`, or the text's end.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        count_step();
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn line_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && !matches!(bytes[i], b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// The end of the value starting at `start`: a string, a bracketed object or array (to
/// its matching close, or the text's end), or a bare word up to a delimiter.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        None => start,
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            bytes.len()
        }
        Some(_) => {
            let mut i = start;
            while i < bytes.len()
                && !matches!(
                    bytes[i],
                    b'&' | b';' | b',' | b'}' | b']' | b'"' | b'#' | b' ' | b'\t' | b'\r' | b'\n'
                )
            {
                i += 1;
            }
            i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of many escaped quotes once took quadratic time (each quote rescanned the
    /// rest of the text): the scanner's steps must stay proportional to the input.
    #[test]
    fn hostile_quote_runs_are_scanned_in_linear_time() {
        let hostile = format!("\"{}\"x", "\\\"".repeat(20_000));
        STEPS.with(|s| s.set(0));
        let masked = mask_text(&hostile);
        let steps = STEPS.with(std::cell::Cell::get);
        assert_eq!(masked.len(), hostile.len());
        assert!(
            steps <= 4 * hostile.len(),
            "{steps} steps for {} bytes",
            hostile.len()
        );
        let secret = format!("{}\"password\":\"hunter2\"", "\\\"".repeat(1_000));
        assert!(!mask_text(&secret).contains("hunter2"));
    }

    #[test]
    fn long_targets_are_cut_before_they_are_masked() {
        let path = format!("/Users?filter={}", "\\\"".repeat(20_000));
        let masked = mask_target(&path, Some("access_token=abc"));
        assert!(masked.len() < TARGET_CAP_BYTES + 64, "{}", masked.len());
        assert!(masked.ends_with("bytes in all]"));
        assert_eq!(
            mask_target("/Users", Some("access_token=abc")),
            "/Users?access_token=[redacted]"
        );
    }
    use serde_json::json;

    #[test]
    fn secret_keys_are_recognised_in_any_spelling() {
        for key in [
            "password",
            "userPassword",
            "client_secret",
            "clientSecret",
            "access-token",
            "ACCESS_TOKEN",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "user[password]",
            "user%5Bpassword%5D",
            "api_key",
            "Authorization",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "userName",
            "displayName",
            "value",
            "path",
            "tokens_used",
            "",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn a_patch_value_whose_path_names_a_secret_is_redacted() {
        let mut body = json!({"Operations": [
            {"op": "replace", "path": "password", "value": "hunter2"},
            {"op": "replace", "path": "displayName", "value": "Ada"}
        ]});
        redact(&mut body);
        let text = body.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("Ada"), "{text}");
    }

    #[test]
    fn truncated_json_loses_the_secret_values() {
        for (text, secret) in [
            (r#"{"userName":"ada","password":"hunter2"#, "hunter2"),
            (r#"{"userName":"ada","password":"hun"#, "hun"),
            (
                r#"{"userName":"ada", "password" : "hunter2", "x":"#,
                "hunter2",
            ),
            (r#"{"password":12345,"x""#, "12345"),
            (
                r#"{"clientSecret":{"value":"s3cr3t","x":"y"},"userName":"ada""#,
                "s3cr3t",
            ),
            (r#"{"password":{"value":"s3cr3t","#, "s3cr3t"),
            (
                r#"[{"op":"replace","value":"hunter2","path":"password"}"#,
                "hunter2",
            ),
            (r#"{"note":"token=abc123","#, "abc123"),
        ] {
            let masked = mask_text(text);
            assert!(!masked.contains(secret), "{text} -> {masked}");
            assert!(masked.contains(MASK), "{text} -> {masked}");
        }
        let masked = mask_text(r#"{"userName":"ada","password":"hunter2","active":tru"#);
        assert_eq!(
            masked,
            r#"{"userName":"ada","password":"[redacted]","active":tru"#
        );
    }

    #[test]
    fn form_and_plain_text_lose_the_secret_values() {
        assert_eq!(
            mask_text("user=ada&password=hunter2&client_secret=s%20x&x=1"),
            "user=ada&password=[redacted]&client_secret=[redacted]&x=1"
        );
        assert_eq!(
            mask_text("user%5Bpassword%5D=hunter2"),
            "user%5Bpassword%5D=[redacted]"
        );
        assert_eq!(
            mask_text("Authorization: Bearer abc.def\nx: 1"),
            "Authorization: [redacted]\nx: 1"
        );
        assert_eq!(
            mask_text("password = hunter2 ok"),
            "password = [redacted] ok"
        );
        assert_eq!(
            mask_text("nothing secret here: at all"),
            "nothing secret here: at all"
        );
        assert_eq!(mask_text("é password=ü"), "é password=[redacted]");
    }

    #[test]
    fn tokens_in_the_query_string_are_masked() {
        assert_eq!(
            mask_target("/Users", Some("access_token=abc&count=5")),
            "/Users?access_token=[redacted]&count=5"
        );
        assert_eq!(
            mask_target("/Users", Some("filter=userName%20eq%20%22ada%22&token=t1")),
            "/Users?filter=userName%20eq%20%22ada%22&token=[redacted]"
        );
        assert_eq!(
            mask_target("/Users/1;jsessiontoken=x", None),
            "/Users/1;jsessiontoken=[redacted]"
        );
        assert_eq!(mask_target("/Users", None), "/Users");
    }
}
