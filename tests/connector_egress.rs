//! Credentials only go to the host they belong to, for every pull connector: a paging
//! link, a redirect of an API call or of a token request pointing at another host (a
//! decoy on another loopback port) fails the read, names both hosts, and the decoy
//! receives nothing; plain-http base URLs need `allow_insecure_http`; oversized bodies
//! are refused; and a read that fails this way leaves the target as it was.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use idsync::config::{
    AzureCredential, AzureSettings, GoogleDirectoryScope, GoogleSettings, KeycloakSettings,
    MappingConfig, OktaAuth, OktaSettings, OnRemove, SecretString, StatusPolicy,
    parse_service_account_key,
};
use idsync::connectors::azure::AzureConnector;
use idsync::connectors::google::GoogleConnector;
use idsync::connectors::http::{HttpOptions, RetryPolicy};
use idsync::connectors::keycloak::KeycloakConnector;
use idsync::connectors::okta::OktaConnector;
use idsync::connectors::{BatchSink, PullConnector, SinkError, SourceBatch};
use idsync::sync::{self, NoProgress, RunOptions};
use idsync::target::query;

use crate::support::conformance::{Directory, Knobs};
use crate::support::fake_okta::{self, FakeAuth, OktaOptions};
use crate::support::{fake_google, sqlite};

/// One request a server got: method, path, whether it carried `Authorization`, body.
type Seen = (String, String, bool, String);

/// What one server answers: (method, path) -> (status, headers, body).
type Answer =
    Arc<dyn Fn(&Method, &str) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

/// A loopback HTTP server answering with `answer` and recording every request it gets
/// (method, path, whether it carried `Authorization`, its body).
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(answer: Answer) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
                let record = record.clone();
                let answer = answer.clone();
                async move {
                    record.lock().unwrap().push((
                        method.to_string(),
                        uri.path().to_string(),
                        headers.contains_key("authorization"),
                        body,
                    ));
                    let (status, headers, body) = answer(&method, uri.path());
                    let mut response = Response::builder().status(status);
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    response.body(Body::from(body)).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            base: format!("http://{addr}"),
            seen,
        }
    }

    /// A decoy: answers everything 200 with an empty list.
    async fn decoy() -> Server {
        Server::start(Arc::new(|_, _| {
            (
                200,
                vec![("content-type", "application/json".into())],
                "[]".into(),
            )
        }))
        .await
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `127.0.0.1:port`.
    fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

fn json(body: serde_json::Value) -> (u16, Vec<(&'static str, String)>, String) {
    (
        200,
        vec![("content-type", "application/json".into())],
        body.to_string(),
    )
}

fn token() -> (u16, Vec<(&'static str, String)>, String) {
    json(serde_json::json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}))
}

fn redirect(to: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (302, vec![("location", to.to_string())], String::new())
}

#[derive(Default)]
struct Discard;

#[async_trait::async_trait]
impl BatchSink for Discard {
    async fn accept(&mut self, _batch: SourceBatch) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Reads with `connector` and returns the error text (the read must fail).
async fn read_error(connector: &dyn PullConnector) -> String {
    let error = connector
        .read(None, &mut Discard)
        .await
        .expect_err("the read fails");
    error.to_string()
}

fn short_options() -> HttpOptions {
    HttpOptions {
        max_retry_time: Duration::from_secs(2),
        retry: RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        },
        ..HttpOptions::default()
    }
}

fn okta_settings(base: &str, service_app: bool) -> OktaSettings {
    let auth = if service_app {
        OktaAuth::ServiceApp(idsync::config::ServiceApp {
            client_id: fake_okta::CLIENT_ID.to_string(),
            private_key: SecretString::new(fake_okta::test_key("okta_test_key.pem")),
            algorithm: idsync::config::KeyAlgorithm::Rs256,
            key_id: None,
            scopes: vec!["okta.users.read".into(), "okta.groups.read".into()],
            token_url: format!("{base}/oauth2/v1/token"),
        })
    } else {
        OktaAuth::ApiToken(SecretString::new(fake_okta::API_TOKEN))
    };
    OktaSettings {
        base_url: base.to_string(),
        auth,
        group_types: vec!["OKTA_GROUP".into()],
        deprovisioned: StatusPolicy::Inactive,
        suspended: StatusPolicy::Inactive,
        page_size: 200,
        requests_per_second: std::num::NonZeroU32::new(1000),
        full_sync_every: Duration::from_secs(24 * 3600),
        allow_insecure_http: true,
    }
}

fn azure_settings(base: &str) -> AzureSettings {
    let mut s = AzureSettings::new(
        "contoso.onmicrosoft.com",
        "app",
        AzureCredential::Secret(SecretString::new("graph-secret")),
    );
    s.token_url = format!("{base}/t/oauth2/v2.0/token");
    s.graph_url = base.to_string();
    s.requests_per_second = std::num::NonZeroU32::new(1000);
    s.max_retry_time = Duration::from_secs(2);
    s.allow_insecure_http = true;
    s
}

fn google_settings(base: &str) -> GoogleSettings {
    GoogleSettings {
        key: parse_service_account_key(fake_google::KEY_FILE).unwrap(),
        subject: fake_google::ADMIN.to_string(),
        directory: GoogleDirectoryScope::Customer("my_customer".into()),
        scopes: vec![
            fake_google::SCOPE_USER_RO.to_string(),
            fake_google::SCOPE_GROUP_RO.to_string(),
        ],
        token_url: format!("{base}/token"),
        api_base_url: base.to_string(),
        include_suspended: true,
        include_archived: true,
        page_size: 100,
        requests_per_second: std::num::NonZeroU32::new(1000),
        activity_reports: false,
        full_sync_every: std::time::Duration::ZERO,
        allow_insecure_http: true,
    }
}

fn keycloak_settings(base: &str) -> KeycloakSettings {
    KeycloakSettings {
        base_url: base.to_string(),
        realm: "acme".into(),
        client_id: "idsync".into(),
        client_secret: Some(SecretString::new("kc-secret")),
        password_grant: None,
        token_url: format!("{base}/realms/acme/protocol/openid-connect/token"),
        page_size: 100,
        requests_per_second: std::num::NonZeroU32::new(1000),
        admin_events: false,
        full_sync_every: std::time::Duration::ZERO,
        allow_insecure_http: true,
    }
}

/// Every kind (and both Okta credentials), as connectors against `base`.
fn every_connector(base: &str) -> Vec<(&'static str, Box<dyn PullConnector>)> {
    vec![
        (
            "okta api token",
            Box::new(
                OktaConnector::with_http_options(&okta_settings(base, false), short_options())
                    .unwrap(),
            ),
        ),
        (
            "okta service app",
            Box::new(
                OktaConnector::with_http_options(&okta_settings(base, true), short_options())
                    .unwrap(),
            ),
        ),
        (
            "azure",
            Box::new(AzureConnector::new(&azure_settings(base)).unwrap()),
        ),
        (
            "google",
            Box::new(
                GoogleConnector::with_options(&google_settings(base), short_options()).unwrap(),
            ),
        ),
        (
            "keycloak",
            Box::new(KeycloakConnector::new(&keycloak_settings(base)).unwrap()),
        ),
    ]
}

fn is_token_request(method: &Method, path: &str) -> bool {
    method == Method::POST && path.ends_with("token")
}

#[tokio::test]
async fn an_okta_next_link_to_another_host_gets_no_request() {
    for service_app in [false, true] {
        let decoy = Server::decoy().await;
        let next = format!(
            "<{}/api/v1/users?after=00u2&limit=200>; rel=\"next\"",
            decoy.base
        );
        let trap = Server::start(Arc::new(move |method, path| {
            if is_token_request(method, path) {
                return token();
            }
            let (status, mut headers, body) = json(serde_json::json!([]));
            headers.push(("link", next.clone()));
            (status, headers, body)
        }))
        .await;
        let connector = OktaConnector::with_http_options(
            &okta_settings(&trap.base, service_app),
            short_options(),
        )
        .unwrap();
        let text = read_error(&connector).await;
        assert!(text.contains(decoy.host()), "{text}");
        assert!(text.contains(trap.host()), "{text}");
        assert!(text.contains("refused to send a request"), "{text}");
        assert_eq!(decoy.requests(), vec![], "service app: {service_app}");
        assert!(trap.requests().iter().any(|r| r.1 == "/api/v1/users"));
    }
}

#[tokio::test]
async fn graph_next_and_delta_links_to_another_host_get_no_request() {
    for key in ["@odata.nextLink", "@odata.deltaLink"] {
        let decoy = Server::decoy().await;
        let link = format!("{}/v1.0/users/delta?$skiptoken=abc", decoy.base);
        let trap = Server::start(Arc::new(move |method, path| {
            if is_token_request(method, path) {
                return token();
            }
            // Users end with a link elsewhere; groups end normally.
            if path.ends_with("/users/delta") {
                json(serde_json::json!({"value": [], key: link.clone()}))
            } else {
                json(serde_json::json!({"value": [], "@odata.deltaLink": "x"}))
            }
        }))
        .await;
        let connector = AzureConnector::new(&azure_settings(&trap.base)).unwrap();
        let mut checkpoint = None;
        // A delta link is followed on the next run (from the checkpoint), a next link at once.
        for _ in 0..2 {
            match connector.read(checkpoint.as_deref(), &mut Discard).await {
                Ok(summary) => checkpoint = summary.next_checkpoint,
                Err(error) => {
                    let text = error.to_string();
                    assert!(text.contains(decoy.host()), "{key}: {text}");
                    break;
                }
            }
        }
        assert_eq!(decoy.requests(), vec![], "{key}");
    }
}

#[tokio::test]
async fn an_api_redirect_to_another_host_gets_no_request_for_any_connector() {
    let decoy = Server::decoy().await;
    let to = format!("{}/stolen", decoy.base);
    let trap = Server::start(Arc::new(move |method, path| {
        if is_token_request(method, path) {
            token()
        } else {
            redirect(&to)
        }
    }))
    .await;
    for (name, connector) in every_connector(&trap.base) {
        let text = read_error(connector.as_ref()).await;
        assert!(text.contains("HTTP 302"), "{name}: {text}");
        assert!(
            text.contains(decoy.host()) && text.contains(trap.host()),
            "{name}: {text}"
        );
        assert_eq!(decoy.requests(), vec![], "{name}");
    }
}

#[tokio::test]
async fn a_token_endpoint_redirect_to_another_host_gets_no_secret() {
    let decoy = Server::decoy().await;
    let to = format!("{}/token", decoy.base);
    // 307 keeps the method and body: followed, it would post the secret to the decoy.
    let trap = Server::start(Arc::new(move |method, path| {
        if is_token_request(method, path) {
            (307, vec![("location", to.clone())], String::new())
        } else {
            json(serde_json::json!([]))
        }
    }))
    .await;
    for (name, connector) in every_connector(&trap.base) {
        if name == "okta api token" {
            continue;
        }
        let text = read_error(connector.as_ref()).await;
        assert!(
            text.contains("HTTP 307") && text.contains(decoy.host()),
            "{name}: {text}"
        );
        assert_eq!(decoy.requests(), vec![], "{name}");
        // Nothing reached the API without a token either.
        assert!(
            trap.requests().iter().all(|r| r.0 == "POST"),
            "{name}: {:?}",
            trap.requests()
        );
    }
}

#[tokio::test]
async fn plain_http_needs_the_option_and_a_loopback_host() {
    let mut okta = okta_settings("http://127.0.0.1:9", true);
    okta.allow_insecure_http = false;
    let error = OktaConnector::new(&okta).unwrap_err().to_string();
    assert!(
        error.contains("okta.base_url") && error.contains("allow_insecure_http"),
        "{error}"
    );
    let mut azure = azure_settings("http://127.0.0.1:9");
    azure.allow_insecure_http = false;
    let Err(error) = AzureConnector::new(&azure) else {
        panic!("refused");
    };
    let error = error.to_string();
    assert!(error.contains("azure.graph_url"), "{error}");
    let mut google = google_settings("https://admin.example");
    google.token_url = "http://idp.example/token".into();
    let Err(error) = GoogleConnector::new(&google) else {
        panic!("refused");
    };
    let error = error.to_string();
    assert!(error.contains("google.token_url"), "{error}");
    let keycloak = keycloak_settings("http://sso.example");
    let error = KeycloakConnector::new(&keycloak).unwrap_err().to_string();
    assert!(
        error.contains("keycloak.base_url") && error.contains("loopback"),
        "{error}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let big = format!("[{}]", vec!["{\"id\":\"00u1\"}"; 20_000].join(","));
    let size = big.len();
    let api = Server::start(Arc::new(move |_, _| json_text(&big))).await;
    let options = HttpOptions {
        max_response_bytes: 64 * 1024,
        ..short_options()
    };
    let connector =
        OktaConnector::with_http_options(&okta_settings(&api.base, false), options).unwrap();
    let text = read_error(&connector).await;
    assert!(size > 64 * 1024);
    assert!(
        text.contains("larger than 65536 bytes") && text.contains("max_response_bytes"),
        "{text}"
    );

    // A token endpoint answering megabytes is cut off too.
    let huge = "x".repeat(2 * 1024 * 1024);
    let tokens = Server::start(Arc::new(move |_, _| json_text(&huge))).await;
    let connector = KeycloakConnector::new(&keycloak_settings(&tokens.base)).unwrap();
    let text = read_error(&connector).await;
    assert!(text.contains("larger than 1048576 bytes"), "{text}");
}

fn json_text(body: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (
        200,
        vec![("content-type", "application/json".into())],
        body.to_string(),
    )
}

#[tokio::test]
async fn a_run_stopped_by_a_foreign_link_leaves_the_target_unchanged() {
    let db = sqlite().await;
    let mapping = MappingConfig::pass_through("default", OnRemove::Disable, 100_000, 100.0);
    let directory = Directory::generated(6, 2, 3);
    let good = fake_okta::start_okta(
        directory,
        Knobs::default(),
        OktaOptions {
            auth: FakeAuth::ApiToken,
            ..OktaOptions::default()
        },
    )
    .await;
    let mut settings = good.settings();
    settings.full_sync_every = Duration::ZERO;
    let run = |connector: OktaConnector| {
        let db = &db;
        let mapping = &mapping;
        async move {
            sync::sync(
                db,
                "okta",
                mapping,
                &connector,
                RunOptions::default(),
                &NoProgress,
            )
            .await
        }
    };
    run(good.connector_with(&settings))
        .await
        .expect("first run");
    let before = query::table_counts(db.pool()).await.unwrap();
    assert!(before.0 > 0, "{before:?}");

    let decoy = Server::decoy().await;
    let next = format!("<{}/api/v1/users?after=x>; rel=\"next\"", decoy.base);
    let trap = Server::start(Arc::new(move |_, _| {
        let (status, mut headers, body) = json(serde_json::json!([]));
        headers.push(("link", next.clone()));
        (status, headers, body)
    }))
    .await;
    settings.base_url = trap.base.clone();
    let error = run(fake_okta_connector(&settings)).await.unwrap_err();
    assert!(error.to_string().contains(decoy.host()), "{error}");
    assert_eq!(query::table_counts(db.pool()).await.unwrap(), before);
    assert_eq!(decoy.requests(), vec![]);
}

fn fake_okta_connector(settings: &OktaSettings) -> OktaConnector {
    OktaConnector::with_http_options(settings, short_options()).unwrap()
}
