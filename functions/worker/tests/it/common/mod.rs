//! Helpers for the worker's tests that talk to AWS clients: an SDK configuration with fake
//! credentials, and a stub HTTP server (a plain `std::net::TcpListener` thread writing raw
//! HTTP/1.1 answers) that plays a provider failing on cue, or one that never answers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};

/// What a production process would load, pointed at `endpoint` with fake credentials. Retries
/// and timeouts are the SDK's defaults, as `shared::aws::sdk_config` leaves them.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )))
        .build()
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `x-amzn-ErrorType`: how AWS's JSON protocols name the error.
    pub error_type: Option<&'static str>,
    pub body: String,
}

impl Reply {
    pub fn error(status: u16, error_type: &'static str) -> Self {
        Self {
            status,
            error_type: Some(error_type),
            body: format!(r#"{{"message":"stub: {error_type}"}}"#),
        }
    }

    /// SES v2 `SendEmail`'s success.
    pub fn sent(message_id: &str) -> Self {
        Self {
            status: 200,
            error_type: None,
            body: format!(r#"{{"MessageId":"{message_id}"}}"#),
        }
    }
}

/// A request the stub received: its request line ("POST /v2/email/outbound-emails HTTP/1.1")
/// and its body.
#[derive(Debug, Clone)]
pub struct Request {
    pub line: String,
    pub body: String,
}

pub struct Stub {
    pub endpoint: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    /// Answers requests with `replies` in order, then with 500s (an unplanned request shows up
    /// as a failure, not a hang).
    pub fn answering(replies: Vec<Reply>) -> Self {
        Self::start(Some(replies))
    }

    /// Accepts connections and reads requests, but never answers.
    pub fn silent() -> Self {
        Self::start(None)
    }

    fn start(replies: Option<Vec<Reply>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        // Detached: it lives as long as the test process, like the listener.
        std::thread::spawn(move || {
            let mut replies = replies.map(VecDeque::from);
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                seen.lock().unwrap().push(request);
                match replies.as_mut() {
                    Some(replies) => {
                        let reply = replies
                            .pop_front()
                            .unwrap_or_else(|| Reply::error(500, "StubOutOfReplies"));
                        write_reply(&mut stream, &reply);
                    }
                    // Keep the connection open and silent.
                    None => held.push(stream),
                }
            }
        });
        Self { endpoint, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        line: head.lines().next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&buffer[head_end..]).into_owned(),
    })
}

fn write_reply(stream: &mut TcpStream, reply: &Reply) {
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Stub",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-amzn-requestid: stub-request\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(error_type) = reply.error_type {
        head.push_str(&format!("x-amzn-errortype: {error_type}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}
