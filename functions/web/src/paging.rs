//! Pagination on the web side: `?page=&page_size=` parsed into the shared
//! [`PageRequest`](shared::pagination::PageRequest), and absolute `next` / `previous` links.
//!
//! Links are built from the request as the client made it: its `Host` (already checked against
//! `ALLOWED_HOSTS`), the stage prefix it saw ([`crate::stage`]), its path and its other query
//! parameters. The scheme comes from
//! `X-Forwarded-Proto` only behind Lambda's front doors (API Gateway, ALB, function URLs
//! overwrite it, so it is trusted there); the local server has no proxy and says http unless
//! `FORCE_HTTPS` is on. `X-Forwarded-Host` is never honoured.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use lambda_http::request::RequestContext;
use serde::Serialize;
use shared::error::Error;
use shared::pagination::{Page, PageRequest};

use crate::error::WebError;
use crate::stage::PublicPrefix;
use crate::state::AppState;

/// A list request: the page asked for, and where its neighbours are.
pub struct PageQuery {
    pub request: PageRequest,
    /// `scheme://host/path`, without the query.
    base: String,
    /// The other query parameters, kept in the links.
    others: Vec<(String, String)>,
}

impl FromRequestParts<AppState> for PageQuery {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let query = parts.uri.query().unwrap_or_default();
        let (mut page, mut page_size, mut others) = (None, None, Vec::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "page" => page = Some(value.into_owned()),
                "page_size" => page_size = Some(value.into_owned()),
                // A page's one-time notice does not follow the reader to the next page.
                "notice" => {}
                _ => others.push((key.into_owned(), value.into_owned())),
            }
        }
        let request = PageRequest::parse(page.as_deref(), page_size.as_deref())?;
        let host = host(&parts.headers)
            .ok_or_else(|| WebError(Error::BadRequest("the request has no Host".into())))?;
        let prefix = parts
            .extensions
            .get::<PublicPrefix>()
            .map_or("", |p| p.0.as_str());
        let base = format!(
            "{}://{host}{prefix}{}",
            scheme(parts, state.config.force_https),
            parts.uri.path()
        );
        Ok(Self {
            request,
            base,
            others,
        })
    }
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

fn scheme(parts: &Parts, force_https: bool) -> &'static str {
    let behind_lambda = matches!(
        parts.extensions.get::<RequestContext>(),
        Some(
            RequestContext::ApiGatewayV1(_)
                | RequestContext::ApiGatewayV2(_)
                | RequestContext::Alb(_)
        )
    );
    // Behind Lambda's front doors the header is theirs; a missing one means https.
    let plain_http = parts.headers.contains_key("x-forwarded-proto")
        && crate::security::forwarded_proto(&parts.headers) == "http";
    match (behind_lambda, plain_http) {
        (true, true) => "http",
        (true, false) => "https",
        (false, _) if force_https => "https",
        (false, _) => "http",
    }
}

impl PageQuery {
    /// The same page request, for the list at another path of this site (a page rendered in
    /// answer to a POST links to the list it shows, not to the form's address).
    pub fn at_path(mut self, path: &str) -> Self {
        if let Some(i) = self
            .base
            .find("://")
            .and_then(|i| self.base[i + 3..].find('/').map(|j| i + 3 + j))
        {
            self.base.truncate(i);
        }
        self.base.push_str(path);
        self.others.clear();
        self
    }

    /// The absolute URL of page `n` of this list.
    pub fn url(&self, n: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.others {
            query.append_pair(k, v);
        }
        query.append_pair("page", &n.to_string());
        if self.request.page_size() != shared::pagination::DEFAULT_PAGE_SIZE {
            query.append_pair("page_size", &self.request.page_size().to_string());
        }
        format!("{}?{}", self.base, query.finish())
    }

    /// The contract's list body: `count`, `page`, `page_size`, `total_pages`, `next`,
    /// `previous`, `results`.
    pub fn body<T>(&self, page: Page<T>) -> PageBody<T> {
        PageBody {
            next: page.has_next().then(|| self.url(page.page + 1)),
            previous: page.has_previous().then(|| self.url(page.page - 1)),
            count: page.count,
            page: page.page,
            page_size: page.page_size,
            total_pages: page.total_pages,
            results: page.results,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PageBody<T> {
    pub count: i64,
    pub page: u32,
    pub page_size: u32,
    pub total_pages: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}
