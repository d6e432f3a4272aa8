//! `idsync serve` (the node: SCIM server, scheduler, admin API) and `idsync sync --via`
//! (asking a running node to start a run).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use idsync::config::Config;
use idsync::daemon::{self, ServeOptions};

use crate::Exit;

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match terminate {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

pub async fn serve(config: Config, options: ServeOptions) -> Result<u8> {
    let url = config.engine.database_url.expose().to_string();
    let db = daemon::open_database(&url, options.wait_for_database)
        .await
        .map_err(|e| {
            Exit::failed(format!(
                "{e}{}",
                if options.wait_for_database.is_zero() {
                    " (pass --wait-for-db SECONDS to wait for it at start-up)"
                } else {
                    ""
                }
            ))
        })?;
    let config = Arc::new(config);
    // The banner is for a person at a terminal; under a supervisor the "idsync serving"
    // log line says the same, and a plain line would break a JSON log stream.
    let at_terminal = std::io::stderr().is_terminal();
    daemon::serve(
        config,
        db.clone(),
        options,
        shutdown_signal(),
        move |bound| {
            if !at_terminal {
                return;
            }
            eprintln!(
                "idsync serving: SCIM on http://{} (/scim/<tenant>/v2; plain HTTP, put it behind a \
             TLS-terminating gateway), admin API on http://{}",
                bound.scim, bound.admin
            );
        },
    )
    .await
    .map_err(|e| Exit::failed(e.to_string()))?;
    db.close().await;
    Ok(0)
}

/// `idsync healthcheck`: 0 when `url` answers 200, else 1 with what it answered.
pub async fn healthcheck(url: &str, timeout: Duration) -> Result<u8> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| Exit::failed(format!("cannot build an HTTP client: {e}")))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Exit::failed(format!("not ready: cannot reach {url}: {e}")))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::OK {
        println!("ready: {}", body.trim());
        Ok(0)
    } else {
        Err(Exit::failed(format!(
            "not ready: {url} answered {status}: {}",
            body.trim()
        ))
        .into())
    }
}

/// Asks the node whose admin API is at `via` to run `connector` now, with the admin token
/// from `IDSYNC_ADMIN_TOKEN`.
pub async fn run_via(via: &str, connector: &str) -> Result<u8> {
    let url = format!(
        "{}/api/connectors/{connector}/run",
        via.trim_end_matches('/')
    );
    let token = std::env::var("IDSYNC_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Exit::usage(
                "set IDSYNC_ADMIN_TOKEN to an admin token of that node (create one with \
                 `idsync admin-token create <name>`)",
            )
        })?;
    if let Ok(parsed) = url::Url::parse(&url)
        && parsed.scheme() == "http"
        && !parsed.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
    {
        eprintln!(
            "warning: {via} is plain http to another host: the admin token crosses the network \
             unencrypted; put the admin API behind TLS"
        );
    }
    // The token goes to the node named, never to wherever a redirect points.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Exit::failed(format!("cannot build an HTTP client: {e}")))?;
    let response = client
        .post(&url)
        .bearer_auth(token.trim())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| Exit::failed(format!("cannot reach the admin API at {via}: {e}")))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let detail = body["error"].as_str().unwrap_or("no detail");
    match status.as_u16() {
        200..=299 => {
            println!(
                "run of `{connector}` started on {via}; follow it with `idsync runs --connector {connector}`"
            );
            Ok(0)
        }
        409 => Err(Exit::failed(format!("`{connector}` was not started: {detail}")).into()),
        401 => Err(Exit::usage(format!(
            "{via} refused the admin token in IDSYNC_ADMIN_TOKEN: {detail}"
        ))
        .into()),
        code => Err(Exit {
            code: if code == 404 { 2 } else { 1 },
            message: format!("{via} refused to run `{connector}` ({status}): {detail}"),
        }
        .into()),
    }
}
