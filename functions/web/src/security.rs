//! Web security: allowed hosts, HTTPS, CORS, security headers and the request size limit.
//!
//! - **Host**: a request whose `Host` is not in `ALLOWED_HOSTS` gets 400, as in Django, so no
//!   link or redirect is ever built from a forged host. Malformed hosts (`a.com@evil.tld`,
//!   `a.com:80/path`, ...) are refused before matching, and so are two `Host` headers and an
//!   absolute-form target (`GET http://host/path`) whose host is not the `Host` header's.
//! - **HTTPS** (`FORCE_HTTPS`): behind API Gateway, CloudFront or a load balancer the app sees
//!   plain HTTP, and the proxy says what the client used in `X-Forwarded-Proto`. A page request
//!   that came over http is redirected (301) to https; an API request gets 403 (a redirect
//!   would silently downgrade a POST to a GET and leak credentials first). Responses carry HSTS.
//! - **CORS**: only the exact origins in `CORS_ALLOWED_ORIGINS` get CORS headers (tower-http's
//!   layer, which adds `Vary: Origin`); credentials are never allowed, since the API uses
//!   `Authorization` tokens, not cookies. An OPTIONS request that is no preflight gets 405.
//! - **Headers**: CSP for our pages, `nosniff`, a referrer policy and frame denial on every
//!   response; a handler that sets its own CSP keeps it.
//! - **Size**: a body over `MAX_REQUEST_BYTES` gets 413.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::config::Config;
use shared::error::Error;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::WebError;
use crate::state::AppState;

/// Our pages load only our stylesheet; no scripts, no frames, forms post to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'none'";

/// Refuses hosts outside `ALLOWED_HOSTS` (400), then enforces HTTPS when configured.
pub async fn hosts_and_https(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let config = &state.config;
    // Refusals and redirects carry the security headers too.
    let mut response = match refusal(config, &request) {
        Some(response) => response,
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    if config.force_https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A response may allow its own site to frame it (the admin's email preview).
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The answer to a request refused before routing: a host outside `ALLOWED_HOSTS` (400), plain
/// HTTP to the API under `FORCE_HTTPS` (403) or to a page (301 to https); `None` to go on.
fn refusal(config: &Config, request: &Request) -> Option<Response> {
    let host = match request_host(request, &config.allowed_hosts) {
        Ok(host) => host,
        Err(message) => return Some(WebError(Error::BadRequest(message)).into_response()),
    };
    if config.force_https && forwarded_proto(request.headers()) != "https" {
        let path = request.uri().path();
        if is_api_path(path) {
            return Some(
                WebError(Error::Forbidden(
                    "this API is served over HTTPS only; use https://".into(),
                ))
                .into_response(),
            );
        }
        let target = format!(
            "https://{host}{}",
            request.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        return Some(match HeaderValue::from_str(&target) {
            Ok(location) => (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => WebError(Error::BadRequest(
                "the request URL cannot be redirected".into(),
            ))
            .into_response(),
        });
    }
    None
}

/// Whether `path` is the JSON API's (`/api` and everything under it): over plain HTTP it is
/// refused rather than redirected, and its errors are always JSON.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The host the client asked for, allowed and well formed: the `Host` header (HTTP/1.1, and
/// what lambda_http builds from an event), the URI's authority (an absolute-form target such as
/// `GET http://host/path`, and HTTP/2's `:authority`), or both, which must then agree. RFC 9112
/// has an origin server use the target's host and ignore the header, while axum's and most
/// code's idea of the host is the header: a request where they differ (or with two `Host`
/// headers, of which proxies and caches may pick either) would be checked by one host and
/// served, cached or linked by another, so it is refused (400) rather than reconciled.
fn request_host(request: &Request, allowed: &[String]) -> Result<String, String> {
    let mut headers = request.headers().get_all(header::HOST).iter();
    let header = headers.next().map(|v| v.to_str().unwrap_or("\u{0}"));
    if headers.next().is_some() {
        return Err("the request has more than one Host header".into());
    }
    let target = request.uri().authority().map(|a| a.as_str());
    match (header, target) {
        (None, None) => Err("the request has no Host header".into()),
        (Some(raw), None) | (None, Some(raw)) => validate_host(raw, allowed),
        (Some(raw), Some(target)) => {
            let host = validate_host(raw, allowed)?;
            let target_host = validate_host(target, allowed).map_err(|_| {
                format!("invalid host {target:?} in the request target: malformed or not in ALLOWED_HOSTS")
            })?;
            if same_host(&host, &target_host, request.uri().scheme_str()) {
                Ok(host)
            } else {
                Err(format!(
                    "the Host header {raw:?} and the host of the request target {target:?} differ"
                ))
            }
        }
    }
}

/// Whether two validated hosts (lowercase, `name[:port]`) name the same host and port. A port
/// left out is the scheme's default: lambda_http builds the URI from the `Host` header with a
/// URL parser, which drops `:443` from `https://name:443`.
fn same_host(a: &str, b: &str, scheme: Option<&str>) -> bool {
    let default_port = match scheme {
        Some("https") => Some("443"),
        Some("http") => Some("80"),
        _ => None,
    };
    fn split<'a>(host: &'a str, default_port: Option<&'a str>) -> (&'a str, Option<&'a str>) {
        let (name, port) = match host.rsplit_once(':') {
            // The colons of `[v6]` are not a port.
            Some((name, port)) if !host.ends_with(']') => (name, Some(port)),
            _ => (host, None),
        };
        (
            name.strip_suffix('.').unwrap_or(name),
            port.or(default_port),
        )
    }
    split(a, default_port) == split(b, default_port)
}

/// The scheme the client used, as the proxy in front reports it; plain HTTP without a proxy.
pub(crate) fn forwarded_proto(headers: &HeaderMap) -> String {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        // A chain of proxies appends; the first is the client's.
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "http".to_owned())
}

/// Django's `split_domain_port` + `validate_host`: returns the host (with its port) when it is
/// well formed and allowed, or the reason it is not.
pub fn validate_host(raw: &str, allowed: &[String]) -> Result<String, String> {
    let host = raw.to_ascii_lowercase();
    let refuse = || Err(format!("invalid Host header {raw:?}: not in ALLOWED_HOSTS"));
    let malformed = || Err(format!("invalid Host header {raw:?}"));
    // Split off the port: `name`, `name:port`, `[v6]`, `[v6]:port`.
    let (domain, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return malformed();
        };
        let valid = !inside.is_empty()
            && inside.contains(':')
            && inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if !valid {
            return malformed();
        }
        (format!("[{inside}]"), after)
    } else {
        match host.find(':') {
            Some(i) => (host[..i].to_owned(), &host[i..]),
            None => (host.clone(), ""),
        }
    };
    if !port.is_empty() {
        let digits = port.strip_prefix(':').unwrap_or("x");
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return malformed();
        }
    }
    let name_ok = domain.starts_with('[')
        || (!domain.is_empty()
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    if !name_ok {
        return malformed();
    }
    // One trailing dot is the DNS root: `example.com.` is `example.com`.
    let domain = domain.strip_suffix('.').unwrap_or(&domain);
    let allowed_host = allowed.iter().any(|pattern| {
        pattern == "*"
            || pattern == domain
            || pattern
                .strip_prefix('.')
                .is_some_and(|base| domain == base || domain.ends_with(pattern.as_str()))
    });
    if allowed_host { Ok(host) } else { refuse() }
}

/// Removes every `Access-Control-*` header from an answer that allows no origin: CORS headers
/// go to allowed origins only (tower-http's layer adds the preflight's methods, headers and
/// max age whatever the origin; browsers ignore them without an allowed origin, and an
/// unlisted origin learns nothing from us either).
pub async fn cors_for_allowed_origins_only(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
    response
}

/// CORS for the configured origins only; none at all when the list is empty.
pub fn cors(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .cors_allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(std::time::Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["example.com".into(), ".example.org".into(), "[::1]".into()]
    }

    #[test]
    fn allowed_hosts_match_exactly_or_as_a_domain_and_its_subdomains() {
        for host in [
            "example.com",
            "EXAMPLE.com",
            "example.com:8080",
            "example.com.",
            "example.org",
            "www.example.org",
            "a.b.example.org:443",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(validate_host(host, &allowed()).is_ok(), "{host} refused");
        }
    }

    #[test]
    fn djangos_poisoned_hosts_are_refused() {
        for host in [
            "example.com@evil.tld",
            "example.com:dr.frankenstein@evil.tld",
            "example.com:dr.frankenstein@evil.tld:80",
            "example.com:80/badpath",
            "example.com: recovermypassword.com",
            "other.com",
            "example.com..",
            "notexample.com",
            "example.com.evil.tld",
            "evilexample.org",
            "example.com:",
            "example.com:-1",
            "[::1",
            "[evil]",
            "",
            "exa mple.com",
        ] {
            assert!(
                validate_host(host, &allowed()).is_err(),
                "{host:?} accepted"
            );
        }
    }

    #[test]
    fn a_star_allows_any_well_formed_host_but_never_a_malformed_one() {
        let any = vec!["*".to_owned()];
        assert!(validate_host("anything.test", &any).is_ok());
        assert!(validate_host("example.com@evil.tld", &any).is_err());
    }
}
