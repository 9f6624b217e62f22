//! The stylesheet, built by Tailwind from the templates and embedded at compile time, served
//! under a name that changes with its content.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::WebError;

/// Built by Tailwind from the templates (`npm --prefix assets run build`); committed.
const STYLESHEET: &[u8] = include_bytes!("../../../assets/dist/app.css");

/// The stylesheet's public name, e.g. `app.3f9c0a1b2c4d.css`: a new build gets a new name, so
/// browsers and CDNs may cache each one forever.
pub fn stylesheet_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let digest = hex::encode(Sha256::digest(STYLESHEET));
        format!("app.{}.css", &digest[..12])
    })
}

pub fn stylesheet_url() -> String {
    format!("/static/{}", stylesheet_name())
}

/// `GET /static/{file}`: the current stylesheet, cached for a year.
pub async fn serve(Path(file): Path<String>) -> Result<Response, WebError> {
    if file != stylesheet_name() {
        return Err(WebError::not_found("no such file"));
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        STYLESHEET,
    )
        .into_response())
}
