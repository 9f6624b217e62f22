//! The caller's network address, for rate limits.
//!
//! Taken only from what the platform measured, never from headers a client can write:
//! - API Gateway HTTP API (payload 2.0) and function URLs: `requestContext.http.sourceIp`;
//! - API Gateway REST API: `requestContext.identity.sourceIp`;
//! - ALB: the last `X-Forwarded-For` entry, the one the load balancer appended (earlier entries
//!   are whatever the client sent);
//! - the local server: the TCP peer.
//!
//! A forged `X-Forwarded-For` therefore changes nothing behind API Gateway.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(parts)))
    }
}

pub fn client_ip(parts: &Parts) -> String {
    let from_lambda = match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        Some(RequestContext::Alb(_)) => parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned()),
        _ => None,
    };
    from_lambda
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
        })
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_api_gateway_the_source_ip_wins_over_a_forged_forwarded_for() {
        let event = include_str!("../../../events/apigw-http-get-healthz.json").replace(
            "\"x-forwarded-for\": \"203.0.113.10\"",
            "\"x-forwarded-for\": \"6.6.6.6, 203.0.113.10\"",
        );
        let request = lambda_http::request::from_str(&event).unwrap();
        let (parts, _) = request.into_parts();
        assert_eq!(parts.headers["x-forwarded-for"], "6.6.6.6, 203.0.113.10");
        assert_eq!(client_ip(&parts), "203.0.113.10");
    }

    #[test]
    fn locally_the_tcp_peer_is_the_client() {
        let mut request = axum::http::Request::new(());
        request
            .headers_mut()
            .insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000))));
        let (parts, _) = request.into_parts();
        assert_eq!(client_ip(&parts), "127.0.0.1");
    }
}
