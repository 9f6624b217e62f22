//! A TCP proxy in front of the database server that a test can take down and bring back, as a
//! database that restarts or fails over does: down, it refuses new connections and cuts every
//! open one; up, it listens on the same port again.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct TcpProxy {
    address: SocketAddr,
    target: SocketAddr,
    /// The accept loop, which owns the listener and every piped connection: aborting it
    /// closes them all.
    running: Mutex<Option<JoinHandle<()>>>,
}

impl TcpProxy {
    /// A proxy on a free loopback port to `target`, up.
    pub fn start(target: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = socket.local_addr().unwrap();
        let proxy = Self {
            address,
            target,
            running: Mutex::new(None),
        };
        proxy.serve(socket);
        proxy
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Refuses new connections and cuts the open ones.
    pub fn down(&self) {
        if let Some(running) = self.running.lock().unwrap().take() {
            running.abort();
        }
    }

    /// Listens on the same port again (the cut connections' TIME_WAIT needs SO_REUSEADDR).
    pub fn up(&self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.address).unwrap();
        self.serve(socket);
    }

    fn serve(&self, socket: TcpSocket) {
        let listener = socket.listen(64).unwrap();
        let target = self.target;
        let accept = tokio::spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                pipes.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        let previous = self.running.lock().unwrap().replace(accept);
        assert!(previous.is_none(), "the proxy is already up");
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.down();
    }
}
