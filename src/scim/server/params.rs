//! Query parameters of SCIM requests (RFC 7644 §3.4.2, §3.9): `filter`, `startIndex`,
//! `count`, `sortBy`, `sortOrder`, `attributes` and `excludedAttributes`, from the query
//! string or a `.search` body, and the shaping of a resource by `attributes` /
//! `excludedAttributes`.

use serde_json::{Map, Value};

use crate::filter::{AttrPath, Filter, parse_filter, parse_path};
use crate::scim::error::{ScimError, ScimType};

/// What a list (or `.search`) asks for.
#[derive(Debug, Default)]
pub(crate) struct ListParams {
    pub filter: Option<Filter>,
    pub filter_text: Option<String>,
    pub start_index: u64,
    pub count: Option<u64>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub shape: Shape,
}

/// `attributes` / `excludedAttributes`: which attributes a response carries.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shape {
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn number(name: &str, text: &str) -> Result<i64, ScimError> {
    text.trim().parse::<i64>().map_err(|_| {
        ScimError::bad_request(
            ScimType::InvalidValue,
            format!("`{name}` must be an integer, got {text:?}"),
        )
    })
}

impl Shape {
    /// `attributes` / `excludedAttributes` from the query string alone (GET of one resource,
    /// and the answers to writes).
    pub fn from_query(query: Option<&str>) -> Shape {
        let mut shape = Shape::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if key.eq_ignore_ascii_case("attributes") {
                shape.attributes.extend(split_list(&value));
            } else if key.eq_ignore_ascii_case("excludedAttributes") {
                shape.excluded.extend(split_list(&value));
            }
        }
        shape
    }

    pub fn is_plain(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }
}

impl ListParams {
    fn set(&mut self, key: &str, value: &str) -> Result<(), ScimError> {
        match key.to_ascii_lowercase().as_str() {
            "filter" => {
                let filter = parse_filter(value).map_err(|e| {
                    ScimError::bad_request(
                        ScimType::InvalidFilter,
                        format!("the filter {value:?} is not valid: {e}"),
                    )
                })?;
                self.filter = Some(filter);
                self.filter_text = Some(value.to_string());
            }
            // RFC 7644 §3.4.2.4: below 1 is taken as 1.
            "startindex" => self.start_index = number("startIndex", value)?.max(1) as u64,
            // A negative count is taken as 0.
            "count" => self.count = Some(number("count", value)?.max(0) as u64),
            "sortby" => {
                let path = parse_path(value).map_err(|e| {
                    ScimError::bad_request(
                        ScimType::InvalidPath,
                        format!("sortBy {value:?} is not an attribute path: {e}"),
                    )
                })?;
                if path.filter.is_some() {
                    return Err(ScimError::bad_request(
                        ScimType::InvalidPath,
                        format!("sortBy {value:?} cannot have a filter"),
                    ));
                }
                self.sort_by = Some(path.attr);
            }
            "sortorder" => {
                self.descending = match value.to_ascii_lowercase().as_str() {
                    "ascending" => false,
                    "descending" => true,
                    _ => {
                        return Err(ScimError::bad_request(
                            ScimType::InvalidValue,
                            format!(
                                "sortOrder must be \"ascending\" or \"descending\", got {value:?}"
                            ),
                        ));
                    }
                }
            }
            "attributes" => self.shape.attributes.extend(split_list(value)),
            "excludedattributes" => self.shape.excluded.extend(split_list(value)),
            // Unknown parameters are ignored, as most SCIM servers do.
            _ => {}
        }
        Ok(())
    }

    /// From a GET's query string (`+` and `%20` both decode to a space).
    pub fn from_query(query: Option<&str>) -> Result<ListParams, ScimError> {
        let mut params = ListParams {
            start_index: 1,
            ..ListParams::default()
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            params.set(&key, &value)?;
        }
        Ok(params)
    }

    /// From a `POST .search` body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Value) -> Result<ListParams, ScimError> {
        let mut params = ListParams {
            start_index: 1,
            ..ListParams::default()
        };
        let Some(object) = body.as_object() else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "a search request must be a JSON object",
            ));
        };
        for (key, value) in object {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(items) if key.to_ascii_lowercase().contains("attributes") => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                _ if key.eq_ignore_ascii_case("schemas") => continue,
                other => {
                    return Err(ScimError::bad_request(
                        ScimType::InvalidValue,
                        format!("search parameter `{key}` has an unusable value {other}"),
                    ));
                }
            };
            params.set(key, &text)?;
        }
        Ok(params)
    }
}

/// Finds a key case-insensitively.
fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

/// Splits `urn:...:User:name.givenName` into (Some(urn), "name", Some("givenName")) when
/// the URN is a key of the resource, else (None, top, sub).
fn split_path<'a>(
    resource: &Map<String, Value>,
    path: &'a str,
) -> (Option<String>, &'a str, Option<&'a str>) {
    let mut urn = None;
    let mut rest = path;
    for key in resource.keys().filter(|k| k.starts_with("urn:")) {
        // `get`: a client's path may hold a multi-byte character where the key ends.
        if path.len() > key.len()
            && path
                .get(..key.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(key))
            && path.as_bytes()[key.len()] == b':'
        {
            urn = Some(key.clone());
            rest = &path[key.len() + 1..];
            break;
        }
        if path.eq_ignore_ascii_case(key) {
            return (None, path, None);
        }
    }
    // A core-schema prefix names the core attribute.
    if urn.is_none()
        && let Some(pos) = path.rfind(':')
        && path.starts_with("urn:")
    {
        rest = &path[pos + 1..];
    }
    match rest.split_once('.') {
        Some((top, sub)) => (urn, top, Some(sub)),
        None => (urn, rest, None),
    }
}

fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    let (urn, top, sub) = split_path(from, path);
    let (source, target) = match &urn {
        Some(urn) => {
            let Some(Value::Object(ext)) = from.get(urn) else {
                return;
            };
            let entry = to
                .entry(urn.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(target) = entry else {
                return;
            };
            (ext, target)
        }
        None => (from, to),
    };
    let Some(key) = key_of(source, top) else {
        return;
    };
    let value = &source[&key];
    match (sub, value) {
        (None, _) => {
            target.insert(key, value.clone());
        }
        (Some(sub), Value::Object(inner)) => {
            if let Some(sub_key) = key_of(inner, sub) {
                let entry = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(out) = entry {
                    out.insert(sub_key.clone(), inner[&sub_key].clone());
                }
            }
        }
        (Some(sub), Value::Array(items)) => {
            let picked: Vec<Value> = items
                .iter()
                .filter_map(|item| {
                    let object = item.as_object()?;
                    let sub_key = key_of(object, sub)?;
                    let mut out = Map::new();
                    out.insert(sub_key.clone(), object[&sub_key].clone());
                    Some(Value::Object(out))
                })
                .collect();
            target.insert(key, Value::Array(picked));
        }
        _ => {}
    }
}

fn remove_path(resource: &mut Map<String, Value>, path: &str) {
    let (urn, top, sub) = split_path(resource, path);
    let holder = match &urn {
        Some(urn) => match resource.get_mut(urn) {
            Some(Value::Object(ext)) => ext,
            _ => return,
        },
        None => resource,
    };
    let Some(key) = key_of(holder, top) else {
        return;
    };
    if ["id", "schemas"]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k))
        && urn.is_none()
    {
        return;
    }
    match sub {
        None => {
            holder.remove(&key);
        }
        Some(sub) => match holder.get_mut(&key) {
            Some(Value::Object(inner)) => {
                if let Some(sub_key) = key_of(inner, sub) {
                    inner.remove(&sub_key);
                }
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(inner) = item
                        && let Some(sub_key) = key_of(inner, sub)
                    {
                        inner.remove(&sub_key);
                    }
                }
            }
            _ => {}
        },
    }
}

/// Shapes a resource by `attributes` (only those, plus `id` and `schemas`, which are always
/// returned) or `excludedAttributes` (all but those).
pub(crate) fn shape(resource: Value, shape: &Shape) -> Value {
    if shape.is_plain() {
        return resource;
    }
    let Value::Object(object) = resource else {
        return resource;
    };
    if !shape.attributes.is_empty() {
        let mut out = Map::new();
        for always in ["schemas", "id"] {
            if let Some(key) = key_of(&object, always) {
                out.insert(key.clone(), object[&key].clone());
            }
        }
        for path in &shape.attributes {
            copy_path(&object, &mut out, path);
        }
        return Value::Object(out);
    }
    let mut object = object;
    for path in &shape.excluded {
        remove_path(&mut object, path);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_multi_byte_character_where_an_extension_name_ends_does_not_panic() {
        let resource = serde_json::json!({
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "IT"}
        });
        let key = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let path = format!("{}é:department", &key[..key.len() - 1]);
        let object = resource.as_object().expect("object");
        let (urn, _, _) = split_path(object, &path);
        assert_eq!(urn, None);
    }

    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "ada",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "costCenter": "1"},
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn attributes_keep_only_what_is_asked_plus_id() {
        let shaped = shape(
            user(),
            &Shape {
                attributes: vec![
                    "userName".into(),
                    "name.givenName".into(),
                    "emails.value".into(),
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".into(),
                ],
                excluded: vec![],
            },
        );
        assert_eq!(
            shaped,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "u1",
                "userName": "ada",
                "name": {"givenName": "Ada"},
                "emails": [{"value": "ada@example.com"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            })
        );
    }

    #[test]
    fn excluded_attributes_drop_those_but_never_the_id() {
        let shaped = shape(
            user(),
            &Shape {
                attributes: vec![],
                excluded: vec!["emails".into(), "name.familyName".into(), "id".into()],
            },
        );
        assert!(shaped.get("emails").is_none());
        assert_eq!(shaped["name"], json!({"givenName": "Ada"}));
        assert_eq!(shaped["id"], "u1");
    }

    #[test]
    fn query_parameters_parse_with_plus_as_space() {
        let p = ListParams::from_query(Some(
            "filter=userName+eq+%22a%40b%22&startIndex=0&count=-3&sortBy=userName&sortOrder=descending",
        ))
        .unwrap();
        assert_eq!(p.filter_text.as_deref(), Some("userName eq \"a@b\""));
        assert_eq!((p.start_index, p.count, p.descending), (1, Some(0), true));
        let err = ListParams::from_query(Some("filter=userName+eq")).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        let err = ListParams::from_query(Some("count=ten")).unwrap_err();
        assert_eq!(err.status, 400);
    }
}
