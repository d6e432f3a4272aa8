//! TCP_NODELAY on the PostgreSQL connections, which sqlx 0.9 opens without it.
//!
//! Without it, Nagle's algorithm holds back the last, partial segment of any statement
//! larger than one segment until the server acknowledges the ones before; the server
//! delays that acknowledgement (up to 40 ms on Linux), so every large batched insert
//! waits out the timer. A 50,000-user initial sync spent two thirds of its time so over
//! TCP. (libpq sets TCP_NODELAY on every connection for this reason; see
//! `connectNoDelay` in PostgreSQL's `fe-connect.c`.)
//!
//! sqlx gives no hook on its socket, so after each new connection the process's own
//! descriptors are looked through (`/proc/self/fd`) and TCP_NODELAY is set on every
//! TCP socket connected to the server's port. Every such socket is one of the pool's
//! connections: nothing else in idsync talks to the database. The option only changes
//! when segments are sent, so setting it twice, or on a socket another pool owns, is
//! harmless. When sqlx sets the option itself this module can go (only
//! [`set_on_connections_to`] is called from outside it).
//!
//! Linux only (where `/proc` is); elsewhere nothing is set, and a debug line says so.

use std::io;

/// Sets TCP_NODELAY on this process's TCP sockets connected to `port`; returns how many
/// it found. A descriptor that closes while it is looked at is passed over.
pub fn set_on_connections_to(port: u16) -> io::Result<usize> {
    imp::set_on_connections_to(port)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{BorrowedFd, RawFd};

    use socket2::{SockRef, Type};

    pub(super) fn set_on_connections_to(port: u16) -> io::Result<usize> {
        let mut found = 0;
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let Ok(entry) = entry else { continue };
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<RawFd>().ok())
            else {
                continue;
            };
            // Only sockets: the link of a socket descriptor reads `socket:[inode]`.
            let is_socket = std::fs::read_link(entry.path()).is_ok_and(|target| {
                target
                    .as_os_str()
                    .as_encoded_bytes()
                    .starts_with(b"socket:")
            });
            if !is_socket {
                continue;
            }
            // SAFETY: `fd` was open when listed. Should another thread close it (and the
            // number be reused) before the calls below, they act on whatever holds the
            // number then: a socket check or option change that fails or changes when a
            // TCP socket sends, never memory. Nothing here closes or keeps the descriptor.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let socket = SockRef::from(&borrowed);
            if !matches!(socket.r#type(), Ok(kind) if kind == Type::STREAM) {
                continue;
            }
            let to_port = socket
                .peer_addr()
                .ok()
                .and_then(|peer| peer.as_socket())
                .map(|peer| peer.port());
            if to_port == Some(port) && socket.set_tcp_nodelay(true).is_ok() {
                found += 1;
            }
        }
        Ok(found)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub(super) fn set_on_connections_to(_port: u16) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TCP_NODELAY is set on PostgreSQL connections only on Linux",
        ))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sets_nodelay_on_sockets_to_the_port_only() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let to_server = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let to_other = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_server.nodelay().unwrap());

        let found = set_on_connections_to(server.local_addr().unwrap().port()).unwrap();

        assert_eq!(found, 1);
        assert!(to_server.nodelay().unwrap());
        assert!(
            !to_other.nodelay().unwrap(),
            "a socket to another port is left alone"
        );
    }
}
