//! API Gateway stage prefixes.
//!
//! A REST API (and an HTTP API on a named stage) is reached at
//! `https://<id>.execute-api.<region>.amazonaws.com/<stage>/...`, and `lambda_http` puts the
//! stage in front of the request path (`/prod/api/me`). Our routes are written without it,
//! so [`strip`] removes it before routing and remembers it as the request's [`PublicPrefix`]
//! when the client really saw it (on the execute-api domain; a custom domain maps the stage
//! away), so absolute links keep it: never lost, never doubled. The HTTP API of template.yaml
//! uses the `$default` stage, which has no prefix at all.

use axum::extract::Request;
use axum::http::{Uri, header};
use lambda_http::request::RequestContext;

/// The path prefix the client's URLs carry before our routes (`/prod`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicPrefix(pub String);

/// Removes the stage from the path of a request that came through API Gateway.
pub fn strip(mut request: Request) -> Request {
    let stage = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return request;
    };
    let prefix = format!("/{stage}");
    let path = request.uri().path();
    let rest = if path == prefix {
        "/".to_owned()
    } else {
        match path.strip_prefix(&prefix) {
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => return request,
        }
    };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest,
    };
    let Ok(uri) = Uri::builder().path_and_query(path_and_query).build() else {
        return request;
    };
    *request.uri_mut() = uri;
    let on_execute_api = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(':').next().unwrap_or(h).ends_with(".amazonaws.com"));
    if on_execute_api {
        request.extensions_mut().insert(PublicPrefix(prefix));
    }
    request
}
