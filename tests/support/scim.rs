//! A real SCIM server on a loopback port, over a test database, with one or more tenants
//! and a bearer token for each; requests go through reqwest like an IdP's would.

use std::net::SocketAddr;
use std::sync::Arc;

use idsync::config::{MappingConfig, OnRemove, ScimTenantSettings};
use idsync::db::Db;
use idsync::scim::server::{ScimServer, ServerOptions, Tenant};
use idsync::store::events::EventLog;
use idsync::store::tokens;
use serde_json::Value;

pub struct ScimHarness {
    pub addr: SocketAddr,
    pub server: Arc<ScimServer>,
    pub events: EventLog,
    /// tenant -> its bearer token.
    pub tokens: std::collections::HashMap<String, String>,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A tenant with the default settings and a pass-through mapping.
pub fn tenant(id: &str, on_remove: OnRemove) -> Tenant {
    Tenant::new(
        id,
        ScimTenantSettings::default(),
        MappingConfig::pass_through("default", on_remove, 1000, 100.0),
    )
}

/// A tenant with `settings` and a pass-through mapping that disables removed users.
pub fn tenant_with(id: &str, settings: ScimTenantSettings) -> Tenant {
    Tenant::new(
        id,
        settings,
        MappingConfig::pass_through("default", OnRemove::Disable, 100, 100.0),
    )
}

/// A reply: status, headers and the body parsed as JSON (Null when empty).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl ScimHarness {
    pub async fn start(db: &Db, tenants: Vec<Tenant>) -> ScimHarness {
        Self::start_with(db, tenants, ServerOptions::default()).await
    }

    pub async fn start_with(db: &Db, tenants: Vec<Tenant>, options: ServerOptions) -> ScimHarness {
        let mut issued = std::collections::HashMap::new();
        for t in &tenants {
            let token = tokens::issue(db, &t.id, None).await.expect("issue token");
            issued.insert(t.id.clone(), token.token.expose().to_string());
        }
        let retention = ScimServer::retention_of(&tenants);
        let (events, _writer) = EventLog::start(db.clone(), retention, 10_000);
        let server = Arc::new(ScimServer::new(
            db.clone(),
            tenants,
            options,
            events.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = server.clone();
        let task = tokio::spawn(async move {
            idsync::scim::server::serve(listener, serving, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        ScimHarness {
            addr,
            server,
            events,
            tokens: issued,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, tenant: &str, path: &str) -> String {
        format!("http://{}/scim/{tenant}/v2{path}", self.addr)
    }

    pub fn url_v1(&self, tenant: &str, path: &str) -> String {
        format!("http://{}/scim/{tenant}/v1{path}", self.addr)
    }

    /// A request to `tenant` with its token; `body` is sent as application/scim+json.
    pub async fn call(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let url = self.url(tenant, path);
        self.send(tenant, method, &url, body, &[]).await
    }

    pub async fn send(
        &self,
        tenant: &str,
        method: &str,
        url: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, url);
        if let Some(token) = self.tokens.get(tenant) {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Stops the server (letting requests in flight finish).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ScimHarness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
