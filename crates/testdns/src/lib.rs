//! A real DNS server on a loopback port, for tests that need names to resolve (or
//! not) exactly as a test says: hickory-server in-process, UDP and TCP on one
//! `127.0.0.1:<free port>`, authoritative for the root zone so any name can be
//! given; names not given answer NXDOMAIN. Test-only: it panics on set-up errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fixture fails loudly

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::SOA;
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

const SERIAL: u32 = 1;
const TTL: u32 = 60;

/// A running DNS server; it stops when dropped.
pub struct TestDns {
    addr: SocketAddr,
    _running: Running,
}

enum Running {
    /// Tasks on the caller's runtime, aborted when the server is dropped.
    InRuntime { _server: Box<Server<Catalog>> },
    /// A thread with a runtime of its own, told to stop on drop.
    Thread(Option<tokio::sync::oneshot::Sender<()>>),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Thread(stop) = self
            && let Some(tx) = stop.take()
        {
            let _ = tx.send(());
        }
    }
}

impl TestDns {
    /// Serves `records` (name, address: an A record for IPv4, AAAA for IPv6; a name
    /// may be given several times) on the current tokio runtime.
    pub async fn start(records: &[(&str, IpAddr)]) -> TestDns {
        let (server, addr) = serve(records).await;
        TestDns {
            addr,
            _running: Running::InRuntime {
                _server: Box::new(server),
            },
        }
    }

    /// The same for code without a runtime (tests that run the CLI binary): the
    /// server gets a thread and a runtime of its own.
    pub fn start_blocking(records: &[(&str, IpAddr)]) -> TestDns {
        let records: Vec<(String, IpAddr)> = records
            .iter()
            .map(|(n, ip)| ((*n).to_owned(), *ip))
            .collect();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let borrowed: Vec<(&str, IpAddr)> =
                    records.iter().map(|(n, ip)| (n.as_str(), *ip)).collect();
                let (_server, addr) = serve(&borrowed).await;
                addr_tx.send(addr).unwrap();
                let _ = stop_rx.await;
            });
        });
        TestDns {
            addr: addr_rx.recv().unwrap(),
            _running: Running::Thread(Some(stop_tx)),
        }
    }

    /// Where to send queries (`--dns-server`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A loopback UDP port that takes queries and never answers, for "the DNS server
/// does not respond" tests. Nothing listens on the same TCP port.
pub struct SilentDns {
    socket: std::net::UdpSocket,
}

impl SilentDns {
    pub fn start() -> SilentDns {
        SilentDns {
            socket: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }
}

async fn serve(records: &[(&str, IpAddr)]) -> (Server<Catalog>, SocketAddr) {
    let root = Name::root();
    let mut zone = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
        root.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    // An authoritative zone needs its SOA; it also makes NXDOMAIN answers proper.
    let soa = SOA::new(
        Name::from_ascii("ns.test.").unwrap(),
        Name::from_ascii("hostmaster.test.").unwrap(),
        SERIAL,
        3600,
        600,
        86_400,
        TTL,
    );
    assert!(zone.upsert_mut(
        Record::from_rdata(root.clone(), TTL, RData::SOA(soa)),
        SERIAL
    ));
    for (name, ip) in records {
        let fqdn = if name.ends_with('.') {
            (*name).to_owned()
        } else {
            format!("{name}.")
        };
        let name = Name::from_ascii(&fqdn).unwrap();
        assert!(zone.upsert_mut(Record::from_rdata(name, TTL, RData::from(*ip)), SERIAL));
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&root), vec![Arc::new(zone)]);

    let (udp, tcp, addr) = bind_pair().await;
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    (server, addr)
}

/// A UDP socket and a TCP listener on the same free loopback port (a port free for
/// UDP may be taken for TCP, so try a few).
async fn bind_pair() -> (tokio::net::UdpSocket, tokio::net::TcpListener, SocketAddr) {
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no loopback port free for both UDP and TCP")
}
