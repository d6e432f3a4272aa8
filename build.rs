//! Rebuilds when a migration changes: `sqlx::migrate!` embeds them at compile time. Also
//! sets `idsync_postgres_tests` when `IDSYNC_TEST_POSTGRES_URL` is set, so that without it
//! the PostgreSQL cases of the tests show as ignored (with the reason) instead of passing.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=IDSYNC_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(idsync_postgres_tests)");
    if std::env::var_os("IDSYNC_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=idsync_postgres_tests");
    }
}
