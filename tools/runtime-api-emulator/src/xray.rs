//! The X-Ray daemon's stand-in: the UDP half of its protocol, which is all a function uses.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// A UDP socket on loopback keeping every segment document sent to it. Each datagram must be
/// the protocol's header line, `{"format":"json","version":1}`, then one JSON document; a
/// datagram that is not is kept as a string saying what was wrong, so a test sees it.
pub struct XrayDaemon {
    addr: SocketAddr,
    documents: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl XrayDaemon {
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on loopback");
        // So the thread sees `stop` within a tenth of a second.
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local address");
        let documents = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (documents.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0; 65_536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buffer) {
                    let document = parse(&buffer[..n]);
                    kept.lock().expect("documents lock").push(document);
                }
            }
        });
        Self {
            addr,
            documents,
            stop,
        }
    }

    /// The value of `AWS_XRAY_DAEMON_ADDRESS`, in the form Lambda sets.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The documents received so far, waiting up to `settle` for more after the last one
    /// (datagrams are sent as spans close, with no acknowledgement to wait for).
    pub fn documents(&self, settle: Duration) -> Vec<Value> {
        let mut seen = usize::MAX;
        loop {
            let now = self.documents.lock().expect("documents lock").len();
            if now == seen {
                return self.documents.lock().expect("documents lock").clone();
            }
            seen = now;
            std::thread::sleep(settle);
        }
    }
}

impl Drop for XrayDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn parse(datagram: &[u8]) -> Value {
    let text = String::from_utf8_lossy(datagram);
    match text.split_once('\n') {
        Some((r#"{"format":"json","version":1}"#, document)) => serde_json::from_str(document)
            .unwrap_or_else(|e| Value::String(format!("not JSON ({e}): {document}"))),
        _ => Value::String(format!("no protocol header: {text}")),
    }
}
