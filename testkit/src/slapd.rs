//! A throwaway OpenLDAP server for the ldap connector's integration tests and bench: a
//! `cn=config` generated into a temp directory with `slapadd`, an mdb database for
//! `dc=example,dc=com` loaded from the test's LDIF, the `memberof`, `ppolicy` and
//! `syncprov` overlays where the modules are installed (syncprov optionally with a session
//! log, or left out: [`Slapd::start_without`]), TLS with a CA and server
//! certificate made by the `openssl` CLI, and `slapd` listening on free loopback ports
//! (`ldap://` with StartTLS and `ldaps://`).
//!
//! Accounts: the rootdn (`cn=admin`, no limits) loads data and is never what the
//! connector binds as; `cn=reader` has a size limit of [`READER_SIZE_LIMIT`] for plain
//! searches and pages, but none on a paged search's total (like Active Directory's
//! MaxPageSize), so a larger directory is read whole only by paging; `cn=strict` has the
//! same limit on the paged total, so its reads end with sizeLimitExceeded.
//!
//! Where `slapd` is not installed, [`Slapd::start`] says why and the test skips.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The database's suffix.
pub const SUFFIX: &str = "dc=example,dc=com";
/// The rootdn: loads data; never the connector's account.
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const ROOT_PASSWORD: &str = "admin-secret";
/// The account the connector binds as.
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const READER_PASSWORD: &str = "reader-secret";
/// An account whose paged searches stop at the size limit too.
pub const STRICT_DN: &str = "cn=strict,dc=example,dc=com";
pub const STRICT_PASSWORD: &str = "strict-secret";
/// The account the LDAP target writes as: write access below [`APPS_DN`] only, no size
/// limits.
pub const WRITER_DN: &str = "cn=writer,dc=example,dc=com";
pub const WRITER_PASSWORD: &str = "writer-secret";
/// The subtree the LDAP target's tests own ([`target_ldif`]).
pub const APPS_DN: &str = "ou=apps,dc=example,dc=com";
/// Entries a search (or a page) of the reader may return.
pub const READER_SIZE_LIMIT: usize = 100;

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const MODULE_DIR: &str = "/usr/lib/ldap";
const SCHEMA_DIR: &str = "/etc/ldap/schema";

/// A running slapd; stopped (and its directory removed) on drop.
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    pub tls_port: u16,
    /// The overlays that were loaded (`memberof`, `ppolicy`, `syncprov`).
    pub overlays: Vec<&'static str>,
}

impl Slapd {
    /// Why no slapd can be started here, if it cannot.
    pub fn unavailable() -> Option<String> {
        for tool in [SLAPD, SLAPADD, "/usr/bin/openssl"] {
            if !Path::new(tool).exists() {
                return Some(format!(
                    "{tool} is not installed (apt-get install slapd ldap-utils openssl)"
                ));
            }
        }
        None
    }

    /// Starts a server holding the base entries ([`base_ldif`]) and `ldif`.
    pub fn start(ldif: &str) -> Result<Slapd, String> {
        Slapd::start_with_limit(ldif, READER_SIZE_LIMIT)
    }

    /// [`Slapd::start`] with another size and page limit for the reader (the bench's
    /// reader pages 1,000 at a time, as Active Directory allows).
    pub fn start_with_limit(ldif: &str, reader_limit: usize) -> Result<Slapd, String> {
        Slapd::start_with(ldif, reader_limit, None, &[])
    }

    /// [`Slapd::start`] without the overlays named in `overlays` (`"syncprov"`: no
    /// content sync and no `contextCSN`, as a server that never had the overlay; the
    /// data is then loaded without `slapadd -w`, which would write a `contextCSN` that
    /// nothing keeps up to date).
    pub fn start_without(overlays: &[&str], ldif: &str) -> Result<Slapd, String> {
        Slapd::start_with(ldif, READER_SIZE_LIMIT, None, overlays)
    }

    /// [`Slapd::start`] with syncprov keeping a session log of `entries` changes
    /// (`olcSpSessionlog`): content sync polls then name deleted entries (a delete
    /// phase) instead of listing every unchanged one (a present phase).
    pub fn start_with_session_log(ldif: &str, entries: usize) -> Result<Slapd, String> {
        Slapd::start_with(ldif, READER_SIZE_LIMIT, Some(entries), &[])
    }

    fn start_with(
        ldif: &str,
        reader_limit: usize,
        session_log: Option<usize>,
        without: &[&str],
    ) -> Result<Slapd, String> {
        if let Some(why) = Slapd::unavailable() {
            return Err(why);
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path();
        for sub in ["config", "data"] {
            std::fs::create_dir(root.join(sub)).map_err(|e| format!("mkdir {sub}: {e}"))?;
        }
        make_certificates(root)?;
        let overlays: Vec<&'static str> = ["memberof", "ppolicy", "syncprov"]
            .into_iter()
            .filter(|m| Path::new(MODULE_DIR).join(format!("{m}.so")).exists())
            .filter(|m| !without.contains(m))
            .collect();
        write(
            root,
            "config.ldif",
            &config_ldif(root, &overlays, reader_limit, session_log),
        )?;
        run(Command::new(SLAPADD)
            .args(["-n", "0", "-F"])
            .arg(root.join("config"))
            .arg("-l")
            .arg(root.join("config.ldif")))?;
        write(root, "data.ldif", &format!("{}\n{ldif}", base_ldif()))?;
        // -w: the suffix gets its contextCSN (incremental reads start from it), which
        // only syncprov keeps up to date afterwards.
        let load = if without.contains(&"syncprov") {
            ["-q", "-n", "1", "-F"].as_slice()
        } else {
            ["-q", "-w", "-n", "1", "-F"].as_slice()
        };
        run(Command::new(SLAPADD)
            .args(load)
            .arg(root.join("config"))
            .arg("-l")
            .arg(root.join("data.ldif")))?;
        let (port, tls_port) = (free_port()?, free_port()?);
        let mut slapd = Slapd {
            dir,
            child: None,
            port,
            tls_port,
            overlays,
        };
        slapd.launch()?;
        Ok(slapd)
    }

    fn launch(&mut self) -> Result<(), String> {
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.tls_port
        );
        let log = std::fs::File::create(self.dir.path().join("slapd.log"))
            .map_err(|e| format!("log: {e}"))?;
        // `-d` keeps slapd in the foreground, so the child is the server.
        let child = Command::new(SLAPD)
            .arg("-F")
            .arg(self.dir.path().join("config"))
            .args(["-h", &urls, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{SLAPD}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.tls_port)).is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("slapd exited ({status}): {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("slapd did not listen within 20 s: {}", self.log()))
    }

    /// What slapd wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// `ldap://127.0.0.1:<port>` (plain or StartTLS).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:<tls_port>`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Applies `ldif` (changetype records) as the rootdn with `ldapmodify`.
    pub fn modify(&self, ldif: &str) -> Result<(), String> {
        let path = self.dir.path().join("modify.ldif");
        std::fs::write(&path, ldif).map_err(|e| format!("write: {e}"))?;
        run(Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PASSWORD,
                "-f",
            ])
            .arg(&path))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The suffix, `ou=people`, `ou=groups` and the two bind accounts.
pub fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: reader\nuserPassword: {READER_PASSWORD}\n\n\
         dn: {STRICT_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: strict\nuserPassword: {STRICT_PASSWORD}\n"
    )
}

/// The LDAP target's subtree: [`APPS_DN`] with `ou=people`, `ou=groups` and
/// `ou=disabled` below it, and the writer account.
pub fn target_ldif() -> String {
    format!(
        "dn: {APPS_DN}\nobjectClass: organizationalUnit\nou: apps\n\n\
         dn: ou=people,{APPS_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{APPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=disabled,{APPS_DN}\nobjectClass: organizationalUnit\nou: disabled\n\n\
         dn: {WRITER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: writer\nuserPassword: {WRITER_PASSWORD}\n"
    )
}

fn config_ldif(
    root: &Path,
    overlays: &[&str],
    reader_limit: usize,
    session_log: Option<usize>,
) -> String {
    let r = root.display();
    let mut modules = String::from("olcModuleLoad: back_mdb\n");
    for overlay in overlays {
        modules.push_str(&format!("olcModuleLoad: {overlay}\n"));
    }
    let mut ldif = format!(
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {r}/slapd.pid\n\
         olcTLSCACertificateFile: {r}/ca.pem\nolcTLSCertificateFile: {r}/server.pem\n\
         olcTLSCertificateKeyFile: {r}/server.key\n\n\
         dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
         olcModulePath: {MODULE_DIR}\n{modules}\n\
         dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
         include: file://{SCHEMA_DIR}/core.ldif\n\n\
         include: file://{SCHEMA_DIR}/cosine.ldif\n\n\
         include: file://{SCHEMA_DIR}/nis.ldif\n\n\
         include: file://{SCHEMA_DIR}/inetorgperson.ldif\n\n\
         dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
         objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
         dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\n\
         olcDatabase: {{0}}config\nolcAccess: {{0}}to * by * none\n\n\
         dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\n\
         objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcDbDirectory: {r}/data\n\
         olcSuffix: {SUFFIX}\nolcRootDN: {ROOT_DN}\nolcRootPW: {ROOT_PASSWORD}\n\
         olcDbMaxSize: 2147483648\n\
         olcLimits: {{0}}dn.exact=\"{READER_DN}\" size.soft={reader_limit} \
         size.hard={reader_limit} size.pr={reader_limit} size.prtotal=unlimited\n\
         olcLimits: {{1}}dn.exact=\"{STRICT_DN}\" size.soft={READER_SIZE_LIMIT} \
         size.hard={READER_SIZE_LIMIT} size.pr={READER_SIZE_LIMIT} \
         size.prtotal={READER_SIZE_LIMIT}\n\
         olcLimits: {{2}}dn.exact=\"{WRITER_DN}\" size=unlimited size.pr=unlimited \
         size.prtotal=unlimited\n\
         olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none\n\
         olcAccess: {{1}}to dn.subtree=\"{APPS_DN}\" by dn.exact=\"{WRITER_DN}\" write \
         by users read by * none\n\
         olcAccess: {{2}}to * by users read by * none\n"
    );
    for (index, overlay) in overlays.iter().enumerate() {
        let class = match *overlay {
            "memberof" => "olcMemberOf",
            "ppolicy" => "olcPPolicyConfig",
            _ => "olcSyncProvConfig",
        };
        ldif.push_str(&format!(
            "\ndn: olcOverlay={{{index}}}{overlay},olcDatabase={{1}}mdb,cn=config\n\
             objectClass: olcOverlayConfig\nobjectClass: {class}\n\
             olcOverlay: {{{index}}}{overlay}\n"
        ));
        if let (&"syncprov", Some(entries)) = (overlay, session_log) {
            ldif.push_str(&format!("olcSpSessionlog: {entries}\n"));
        }
    }
    ldif
}

/// A CA and a server certificate for 127.0.0.1 and localhost, by the openssl CLI (the
/// Samba DC's too).
pub(crate) fn make_certificates(root: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(root).args(args));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=idsync test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    write(
        root,
        "server.ext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
         basicConstraints=CA:FALSE\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])
}

pub(crate) fn write(root: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(root.join(name), text).map_err(|e| format!("write {name}: {e}"))
}

/// Runs a setup command; its output in the error when it fails.
pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A loopback port nothing listens on (now).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}
