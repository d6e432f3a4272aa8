//! The LDAP session on ldap3: connecting (`ldap://` + StartTLS or `ldaps://`, on rustls with
//! the ring provider and the configured CA or the system's roots), the simple bind, and
//! [`Directory::page`] as a search with the Simple Paged Results control (RFC 2696).
//! Result codes and transport failures become [`LdapReadError`]s; referrals are never
//! followed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::asn1::{StructureTag, parse_tag, parse_uint};
use ldap3::controls::{MakeCritical, PagedResults, RawControl};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, SearchEntry};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::content_sync::{self, Refresh};
use super::directory::{Directory, Entry, LdapReadError, Page, Scope, SearchRequest};
use super::settings::{LdapSettings, Transport};
use crate::spec::SecretString;

/// The Simple Paged Results control's OID (RFC 2696; also in the root DSE's
/// `supportedControl` of a server that offers it).
pub const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// LDAP result code `strongerAuthRequired` (RFC 4511): AD refuses a simple bind on an
/// unprotected connection with it.
const STRONGER_AUTH_REQUIRED: u32 = 8;

/// Plain searches [`Directory::searches`] keeps in flight on one connection.
const SEARCHES_IN_FLIGHT: usize = 16;

/// The smallest page whose successor is asked for in advance.
const MIN_PREFETCH_PAGE: u32 = 10;

/// A connected, bound session.
pub struct Session {
    ldap: Ldap,
    timeout: std::time::Duration,
    /// The next page of the paged search in progress, already asked for.
    prefetch: Option<Prefetch>,
}

impl Session {
    /// Connects and binds as the configured account.
    pub async fn open(settings: &LdapSettings) -> Result<Session, LdapReadError> {
        let mut session = Session::connect(settings).await?;
        session.bind(settings).await?;
        Ok(session)
    }

    /// A session over a connection made (and bound) elsewhere.
    pub fn over(ldap: Ldap, timeout: Duration) -> Session {
        Session {
            ldap,
            timeout,
            prefetch: None,
        }
    }

    /// Connects (TCP, TLS or StartTLS) without binding.
    pub async fn connect(settings: &LdapSettings) -> Result<Session, LdapReadError> {
        Ok(Session {
            ldap: connect(&settings.transport, settings.timeout).await?,
            timeout: settings.timeout,
            prefetch: None,
        })
    }

    pub async fn bind(&mut self, settings: &LdapSettings) -> Result<(), LdapReadError> {
        let password = settings
            .bind_password
            .as_ref()
            .map_err(|reason| LdapReadError::Bind {
                dn: settings.bind_dn.clone(),
                message: format!("the bind password is not available: {reason}"),
            })?;
        simple_bind(&mut self.ldap, self.timeout, &settings.bind_dn, password).await
    }

    /// Unbinds (best effort: the read is over either way).
    pub async fn close(mut self) {
        self.prefetch = None;
        let _ = self.ldap.unbind().await;
    }
}

/// Connects to `transport` (TCP, TLS or StartTLS) without binding; the connection is
/// driven by a task of its own until the handle is dropped or unbound.
pub async fn connect(transport: &Transport, timeout: Duration) -> Result<Ldap, LdapReadError> {
    let connect_error = |message: String| LdapReadError::Connect {
        url: transport.url.clone(),
        message,
    };
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(transport.starttls);
    if !transport.plain {
        conn_settings = conn_settings.set_config(tls_config(transport).map_err(connect_error)?);
    }
    let (conn, ldap) = LdapConnAsync::with_settings(conn_settings, &transport.url)
        .await
        .map_err(|err| connect_error(err.to_string()))?;
    tokio::spawn(async move {
        if let Err(err) = conn.drive().await {
            tracing::debug!(kind = super::KIND, "connection ended: {err}");
        }
    });
    Ok(ldap)
}

/// A simple bind as `dn`.
pub async fn simple_bind(
    ldap: &mut Ldap,
    timeout: Duration,
    dn: &str,
    password: &SecretString,
) -> Result<(), LdapReadError> {
    let result = ldap
        .with_timeout(timeout)
        .simple_bind(dn, password.expose())
        .await
        .map_err(transport_error)?;
    bind_outcome(result.rc, &result.text, dn)
}

/// A bind's result code as an outcome.
pub(super) fn bind_outcome(rc: u32, text: &str, dn: &str) -> Result<(), LdapReadError> {
    match rc {
        0 => Ok(()),
        STRONGER_AUTH_REQUIRED => Err(LdapReadError::StrongerAuthRequired),
        rc => Err(LdapReadError::Bind {
            dn: dn.to_owned(),
            message: bind_message(rc, text),
        }),
    }
}

/// What a refused bind means.
fn bind_message(rc: u32, text: &str) -> String {
    let what = match rc {
        49 => "invalid credentials (invalidCredentials): check `bind_dn` and `bind_password`"
            .to_owned(),
        13 => "the server requires a protected connection (confidentialityRequired): use \
               StartTLS (`starttls = true`) or an ldaps:// URL"
            .to_owned(),
        other => format!("result code {other}"),
    };
    match text.trim() {
        "" => what,
        text => format!("{what}; server says: {text}"),
    }
}

/// A failure of the connection itself (dropped, timed out, TLS).
pub(crate) fn transport_error(err: LdapError) -> LdapReadError {
    LdapReadError::Transport(err.to_string())
}

#[async_trait]
impl Directory for Session {
    async fn page(
        &mut self,
        request: &SearchRequest,
        paging: Option<(u32, Vec<u8>)>,
    ) -> Result<Page, LdapReadError> {
        let page = match (self.prefetch.take(), &paging) {
            (Some(prefetch), Some((size, cookie)))
                if prefetch.request == *request
                    && prefetch.size == *size
                    && prefetch.cookie == *cookie =>
            {
                prefetch.wait().await?
            }
            _ => joined(self.spawn_search(request, paging.clone())).await?,
        };
        // A tiny page is a probe (`diagnose` looks at one entry and moves on): asking for
        // its next page would leave a paged search in flight beside the next one.
        if let (Some((size, _)), Some(cookie)) = (paging, &page.cookie)
            && size >= MIN_PREFETCH_PAGE
        {
            self.prefetch = Some(Prefetch::start(self, request, size, cookie.clone()));
        }
        Ok(page)
    }

    /// At most [`SEARCHES_IN_FLIGHT`] at once: each is a round trip, which a base search
    /// of one entry spends mostly waiting.
    async fn searches(&mut self, requests: Vec<SearchRequest>) -> Vec<Result<Page, LdapReadError>> {
        use futures_util::{StreamExt, stream};
        self.prefetch = None;
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let (ldap, timeout) = (self.ldap.clone(), self.timeout);
                async move { joined(tokio::spawn(search(ldap, timeout, request, None))).await }
            })
            .collect();
        stream::iter(tasks)
            .buffered(SEARCHES_IN_FLIGHT)
            .collect()
            .await
    }

    async fn refresh(
        &mut self,
        request: &SearchRequest,
        cookie: Option<Vec<u8>>,
    ) -> Result<Refresh, LdapReadError> {
        self.prefetch = None;
        let task = tokio::spawn(content_sync::poll(
            self.ldap.clone(),
            self.timeout,
            request.clone(),
            cookie,
        ));
        task.await.map_err(|err| {
            LdapReadError::Protocol(format!("the server's answer could not be decoded: {err}"))
        })?
    }
}

/// The next page of a paged search, asked for as soon as the page before arrived: the
/// server finds it, and ldap3 decodes it, while the reader maps the page before, where
/// a core is free.
struct Prefetch {
    request: SearchRequest,
    size: u32,
    cookie: Vec<u8>,
    task: tokio::task::JoinHandle<Result<Page, LdapReadError>>,
}

impl Prefetch {
    fn start(session: &Session, request: &SearchRequest, size: u32, cookie: Vec<u8>) -> Prefetch {
        Prefetch {
            task: session.spawn_search(request, Some((size, cookie.clone()))),
            request: request.clone(),
            size,
            cookie,
        }
    }

    async fn wait(mut self) -> Result<Page, LdapReadError> {
        joined(&mut self.task).await
    }
}

impl Drop for Prefetch {
    /// A page nobody asked for after all (the read failed, or `diagnose` looked at one
    /// entry) is not waited for.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Runs one search in a task of its own (also when nothing else runs beside it), so
    /// that an answer ldap3 cannot decode (it panics on malformed BER) fails the read
    /// instead of the process.
    fn spawn_search(
        &self,
        request: &SearchRequest,
        paging: Option<(u32, Vec<u8>)>,
    ) -> tokio::task::JoinHandle<Result<Page, LdapReadError>> {
        tokio::spawn(search(
            self.ldap.clone(),
            self.timeout,
            request.clone(),
            paging,
        ))
    }
}

/// A search task's page.
async fn joined(
    task: impl std::future::Future<Output = Result<Result<Page, LdapReadError>, tokio::task::JoinError>>,
) -> Result<Page, LdapReadError> {
    task.await.map_err(|err| {
        LdapReadError::Protocol(format!("the server's answer could not be decoded: {err}"))
    })?
}

/// One search (one page of it with `paging`), its entries decoded.
async fn search(
    mut ldap: Ldap,
    timeout: std::time::Duration,
    request: SearchRequest,
    paging: Option<(u32, Vec<u8>)>,
) -> Result<Page, LdapReadError> {
    let scope = match request.scope {
        Scope::Base => ldap3::Scope::Base,
        Scope::One => ldap3::Scope::OneLevel,
        Scope::Sub => ldap3::Scope::Subtree,
    };
    let paged = paging.is_some();
    let ldap = ldap.with_timeout(timeout);
    if let Some((size, cookie)) = paging {
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        // Critical: a server that cannot page must refuse rather than end the search at
        // its size limit.
        ldap.with_controls(PagedResults { size, cookie }.critical());
    }
    let attrs: Vec<&str> = request.attrs.iter().map(String::as_str).collect();
    let ldap3::SearchResult(results, outcome) = ldap
        .search(&request.base, scope, &request.filter, attrs)
        .await
        .map_err(transport_error)?;
    if outcome.rc != 0 {
        return Err(LdapReadError::Result {
            rc: outcome.rc,
            text: outcome.text,
        });
    }
    // `search` collects search result references into the result's `refs`.
    let mut page = Page {
        references: outcome.refs.len(),
        ..Page::default()
    };
    for result in results {
        if result.is_ref() {
            page.references += 1;
        } else if !result.is_intermediate() {
            let SearchEntry {
                dn,
                attrs,
                bin_attrs,
            } = SearchEntry::construct(result);
            page.entries.push(Entry {
                dn,
                text: attrs,
                binary: bin_attrs,
            });
        }
    }
    if paged {
        page.cookie = next_cookie(&outcome.ctrls.iter().map(|c| &c.1).collect::<Vec<_>>())?;
    }
    Ok(page)
}

/// The cookie of the paged-results response control (`None` when it is empty or
/// missing: the last page).
fn next_cookie(controls: &[&RawControl]) -> Result<Option<Vec<u8>>, LdapReadError> {
    let Some(control) = controls.iter().find(|c| c.ctype == PAGED_RESULTS_OID) else {
        return Ok(None);
    };
    let value = control.val.as_deref().unwrap_or_default();
    let cookie = parse_paged_value(value).ok_or_else(|| {
        LdapReadError::Protocol("the paged results control cannot be read".to_owned())
    })?;
    Ok((!cookie.is_empty()).then_some(cookie))
}

/// `SEQUENCE { size INTEGER, cookie OCTET STRING }` (RFC 2696), read without panicking
/// on a malformed value (ldap3's own parser panics).
pub(super) fn parse_paged_value(value: &[u8]) -> Option<Vec<u8>> {
    let (_, tag) = parse_tag(value).ok()?;
    let mut parts = tag.expect_constructed()?.into_iter();
    let size: StructureTag = parts.next()?;
    parse_uint(size.expect_primitive()?.as_slice()).ok()?;
    parts.next()?.expect_primitive()
}

/// The TLS client configuration: ring, TLS 1.2+, the CA file's certificates or the
/// system's roots, or no verification at all when `danger_skip_tls_verify` is set.
fn tls_config(transport: &Transport) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let config = if transport.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &transport.ca_certs {
            Some(certs) => {
                for cert in certs {
                    roots
                        .add(cert.clone())
                        .map_err(|err| format!("the CA file's certificate: {err}"))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err("no system CA certificates found: set `ca_file`".to_owned());
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `danger_skip_tls_verify`: any certificate and name is accepted (the handshake's
/// signatures are still checked, so the session is at least with the certificate's
/// holder).
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
