//! Reading responses safely: bodies in chunks up to a cap (never buffered unbounded), and
//! redirects turned into an error that names where they pointed (never followed).

use reqwest::header::LOCATION;

use super::origin::Origin;
use super::{HttpError, redact_url};

/// Most bytes of an error body read: only an excerpt of it is ever shown.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// Why a body could not be read.
pub(crate) enum BodyError {
    /// The transport failed mid-body.
    Transport(reqwest::Error),
    /// The body is larger than the cap.
    TooLarge,
}

/// The body of a successful answer, read in chunks; more than `limit` bytes (announced or
/// received) stops the read.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of an error answer's body, as text (empty when unreadable); the rest is not
/// read.
pub(crate) async fn error_text(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_BYTES);
    String::from_utf8_lossy(&body).into_owned()
}

/// The error for a 3xx answer to a request for `url`: names the `Location`'s host, and
/// says so when it leaves the origin credentials belong to.
pub(crate) fn redirect_error(
    url: &url::Url,
    status: u16,
    headers: &reqwest::header::HeaderMap,
) -> HttpError {
    let target = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| url.join(location).ok());
    let (location, hint) = match &target {
        Some(target) if Origin::of(target) == Origin::of(url) => {
            (redact_url(target), String::new())
        }
        Some(target) => (
            redact_url(target),
            format!(
                " (the redirect leaves {} for another host)",
                Origin::of(url).map_or_else(|| redact_url(url), |o| o.to_string())
            ),
        ),
        None => ("no Location".to_string(), String::new()),
    };
    HttpError::Redirect {
        url_path: redact_url(url),
        status,
        location,
        hint,
    }
}
