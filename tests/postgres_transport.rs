//! The PostgreSQL connections' transport: every connection over TCP has TCP_NODELAY set,
//! which sqlx does not do (a statement larger than one segment would otherwise wait out
//! the server's delayed acknowledgement, ~40 ms on Linux).

use std::os::fd::{BorrowedFd, RawFd};

use socket2::SockRef;

#[tokio::test]
#[cfg_attr(
    not(idsync_postgres_tests),
    ignore = "IDSYNC_TEST_POSTGRES_URL is not set"
)]
async fn every_tcp_connection_of_the_pool_has_nodelay() {
    let Some(db) = crate::support::postgres().await else {
        return;
    };
    // Several connections of the pool at once, each asked which port the server sees it
    // from: over loopback that is the local port of its socket here.
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let mut conn = db.pool().acquire().await.unwrap();
        let port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let Some(port) = port else {
            eprintln!("skipping: IDSYNC_TEST_POSTGRES_URL connects over a Unix socket");
            return;
        };
        ports.push(u16::try_from(port).unwrap());
        held.push(conn);
    }
    for port in ports {
        let nodelay = nodelay_of_socket_from(port)
            .unwrap_or_else(|| panic!("no socket of this process has local port {port}"));
        assert!(
            nodelay,
            "the connection from port {port} has no TCP_NODELAY"
        );
    }
}

/// TCP_NODELAY of this process's socket bound to local `port`, read from the socket itself.
fn nodelay_of_socket_from(port: u16) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the test holds the connections it looks for open; any other descriptor
        // is only asked for its address.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = SockRef::from(&borrowed);
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        if local.map(|a| a.port()) == Some(port) && socket.peer_addr().is_ok() {
            return socket.tcp_nodelay().ok();
        }
    }
    None
}
