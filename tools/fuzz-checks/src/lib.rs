//! The properties the fuzz targets check, one function per target.
//!
//! Each takes the raw bytes libFuzzer generates and panics when the property fails. The fuzz
//! targets in `fuzz/` call these and nothing else, and `tests/fuzz_regressions.rs` feeds them
//! every file in `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/`, so a crashing input
//! kept there is replayed by `cargo test --workspace` on stable Rust, without cargo-fuzz.
//!
//! Inputs are text a person can read and edit: a message body, an `Authorization` value, a
//! query string, and for cookies one name line followed by one `Cookie` header per line (a
//! header value cannot hold a newline, so nothing is lost).

use http::header::{COOKIE, HeaderMap, HeaderValue};
use shared::Error;
use shared::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest};
use shared::queue::{DecodeError, Message, VERSION};
use uuid::Uuid;

/// A target's check: panics if the property fails for this input.
pub type Check = fn(&[u8]);

/// Every target: its name (the fuzz target's and its directories') and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("message_decode", message_decode),
    ("parse_authorization", parse_authorization),
    ("page_request_parse", page_request_parse),
    ("session_token", session_token),
];

/// `Message::decode` on any body: a message it accepts encodes and decodes back to itself, and
/// each refusal is the one the body deserves. Also: any message round-trips through `encode`.
pub fn message_decode(data: &[u8]) {
    let mut id = [0u8; 16];
    for (slot, byte) in id.iter_mut().zip(data) {
        *slot = *byte;
    }
    let message = Message::SendEmail {
        email_id: Uuid::from_bytes(id),
    };
    assert_eq!(Message::decode(&message.encode()), Ok(message));

    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let json = serde_json::from_str::<serde_json::Value>(body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name)).cloned();
    match Message::decode(body) {
        Ok(message) => {
            assert_eq!(field("v"), Some(VERSION.into()), "accepted without v:1");
            assert_eq!(
                Message::decode(&message.encode()).as_ref(),
                Ok(&message),
                "an accepted message does not survive encode and decode"
            );
        }
        Err(DecodeError::UnsupportedVersion(v)) => {
            assert_ne!(v, VERSION, "refused its own version");
            assert_eq!(field("v"), Some(v.into()));
        }
        Err(DecodeError::UnknownKind(kind)) => {
            assert_ne!(kind, "send_email", "called a known kind unknown");
            assert_eq!(field("v"), Some(VERSION.into()));
            assert_eq!(field("kind"), Some(kind.into()));
        }
        Err(DecodeError::Malformed(reason)) => assert!(!reason.is_empty()),
    }
}

/// `web::api::parse_authorization` on any value: a token it returns is a non-empty slice of
/// the value (not a copy or a default), has the shape of our tokens, and follows one of the
/// two schemes.
pub fn parse_authorization(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Some(token) = web::api::parse_authorization(value) else {
        return;
    };
    assert!(!token.is_empty());
    let start = slice_start(value, token).expect("the token is not a slice of the header value");
    assert!(is_token(token), "not 64 hex digits: {token:?}");
    let scheme = value[..start].trim();
    assert!(
        scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"),
        "scheme {scheme:?}"
    );
    assert_eq!(
        value[start + token.len()..].trim(),
        "",
        "text after the token"
    );
}

/// `PageRequest::parse` on any query string, read as `web::paging` reads it (the last `page`
/// and `page_size` win): when it accepts, the values are the query's own or the defaults, and
/// within their documented bounds; when it refuses, it is a 400.
pub fn page_request_parse(data: &[u8]) {
    let (mut page, mut page_size) = (None, None);
    for (key, value) in form_urlencoded::parse(data) {
        match key.as_ref() {
            "page" => page = Some(value.into_owned()),
            "page_size" => page_size = Some(value.into_owned()),
            _ => {}
        }
    }
    match PageRequest::parse(page.as_deref(), page_size.as_deref()) {
        Ok(request) => {
            let given = |raw: &Option<String>| {
                raw.as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|r| {
                        r.parse::<u32>()
                            .expect("accepted a value that is not a u32")
                    })
            };
            assert_eq!(request.page(), given(&page).unwrap_or(1));
            assert_eq!(
                request.page_size(),
                given(&page_size).unwrap_or(DEFAULT_PAGE_SIZE)
            );
            assert!(request.page() >= 1);
            assert!((1..=MAX_PAGE_SIZE).contains(&request.page_size()));
            assert_eq!(request.limit(), i64::from(request.page_size()));
            assert_eq!(
                request.offset(),
                (i64::from(request.page()) - 1) * i64::from(request.page_size())
            );
        }
        Err(Error::BadRequest(reason)) => assert!(reason.contains("page")),
        Err(other) => panic!("not a 400: {other:?}"),
    }
}

/// `web::session::session_token` on any `Cookie` headers: it returns exactly the first
/// well-formed value of a cookie with that name, as a slice of one of the headers.
///
/// The input is the cookie's name, a newline, then one `Cookie` header per line.
pub fn session_token(data: &[u8]) {
    let mut lines = data.split(|b| *b == b'\n');
    let Some(Ok(name)) = lines.next().map(std::str::from_utf8) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        // A request cannot carry a value `HeaderValue` refuses.
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }

    let found = web::session::session_token(&headers, name);

    // A reading of RFC 6265's `Cookie` header: `name=value` pairs split on `;`, whitespace
    // around each part ignored; headers that are not visible ASCII are skipped.
    let expected = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, v)| !name.is_empty() && n.trim() == name && is_token(v.trim()))
        .map(|(_, v)| v.trim());
    assert_eq!(found, expected, "cookie {name:?} in {headers:?}");
    if let Some(token) = found {
        assert!(
            headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| slice_start(v, token).is_some()),
            "the token is not a slice of a Cookie header"
        );
    }
}

/// 32 bytes, hex: the shape of our API and session tokens.
fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where `part` starts in `whole`, if it is a slice of it (the same memory, not equal text).
fn slice_start(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}
