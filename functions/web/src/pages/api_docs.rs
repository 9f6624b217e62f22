//! `GET /docs/api`: the JSON API's reference, rendered on the server from the OpenAPI document
//! the API serves (`assets/openapi.json`), so it cannot drift from it. No CDN and no script
//! (the CSP allows neither): the document is walked once, into a view model the template lists.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::response::Html;
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Serialize;
use serde_json::Value as Json;

use super::Page;
use crate::error::WebError;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// Text with its `code` spans apart, as OpenAPI descriptions write them in Markdown.
type Text = Vec<Segment>;

#[derive(Debug, Serialize)]
struct Segment {
    text: String,
    code: bool,
}

#[derive(Debug, Serialize)]
struct ApiDoc {
    title: String,
    version: String,
    description: Text,
    groups: Vec<Group>,
}

#[derive(Debug, Serialize)]
struct Group {
    name: String,
    operations: Vec<Operation>,
}

#[derive(Debug, Serialize)]
struct Operation {
    /// An HTML id for links to it (the operationId, else method and path).
    anchor: String,
    method: String,
    path: String,
    summary: Text,
    description: Text,
    parameters: Vec<Parameter>,
    body: Option<Body>,
    responses: Vec<Response>,
    /// The schemes that authenticate it (e.g. "Bearer token"); empty: no authentication.
    security: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Parameter {
    name: String,
    location: String,
    required: bool,
    kind: String,
    description: Text,
}

#[derive(Debug, Serialize)]
struct Body {
    required: bool,
    content_type: String,
    schema: Option<Schema>,
}

#[derive(Debug, Serialize)]
struct Schema {
    name: String,
    description: Text,
    fields: Vec<Field>,
}

#[derive(Debug, Serialize)]
struct Field {
    name: String,
    kind: String,
    required: bool,
    description: Text,
}

#[derive(Debug, Serialize)]
struct Response {
    status: String,
    description: Text,
    schema: Option<String>,
}

/// The document as the page shows it, built at the first request and kept as the template
/// value (an `Arc` inside, so each request clones a pointer).
fn document() -> Result<Value, WebError> {
    static DOC: OnceLock<Result<Value, String>> = OnceLock::new();
    DOC.get_or_init(|| parse(crate::api::OPENAPI).map(|doc| Value::from(Serde(doc))))
        .clone()
        .map_err(|e| WebError::unexpected(anyhow::anyhow!("assets/openapi.json: {e}")))
}

pub(super) async fn page(page: Page) -> Result<Html<String>, WebError> {
    let doc = document()?;
    page.render("api_docs.html", context! { doc }).await
}

fn parse(source: &str) -> Result<ApiDoc, String> {
    let root: Json = serde_json::from_str(source).map_err(|e| e.to_string())?;
    let paths = root["paths"]
        .as_object()
        .ok_or("the document has no paths")?;
    // Tag -> operations, in the document's order of tags, then of first use.
    let mut order: Vec<String> = root["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let mut groups: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let tag = op["tags"][0]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| group_of(path));
            if !order.contains(&tag) {
                order.push(tag.clone());
            }
            groups
                .entry(tag)
                .or_default()
                .push(operation(&root, path, method, item, op));
        }
    }
    Ok(ApiDoc {
        title: root["info"]["title"].as_str().unwrap_or("API").to_owned(),
        version: root["info"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        description: text(&root["info"]["description"]),
        groups: order
            .into_iter()
            .filter_map(|name| {
                let operations = groups.remove(&name)?;
                Some(Group { name, operations })
            })
            .collect(),
    })
}

/// Untagged operations are grouped by the first segment after `/api/`: "auth", "me".
fn group_of(path: &str) -> String {
    let rest = path
        .strip_prefix("/api/")
        .unwrap_or(path.trim_start_matches('/'));
    let first = rest.split('/').next().unwrap_or_default();
    match first {
        "me" => "account".to_owned(),
        "openapi.json" | "" => "document".to_owned(),
        other => other.to_owned(),
    }
}

fn operation(root: &Json, path: &str, method: &str, item: &Json, op: &Json) -> Operation {
    // Path-level parameters apply to every operation; the operation's own override them.
    let mut parameters: Vec<Parameter> = Vec::new();
    for raw in item["parameters"]
        .as_array()
        .into_iter()
        .chain(op["parameters"].as_array())
        .flatten()
    {
        let p = resolve(root, raw);
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let location = p["in"].as_str().unwrap_or_default().to_owned();
        parameters.retain(|q| !(q.name == name && q.location == location));
        parameters.push(Parameter {
            required: p["required"].as_bool().unwrap_or(location == "path"),
            kind: kind(root, &p["schema"]),
            description: text(&p["description"]),
            name,
            location,
        });
    }
    let body = op.get("requestBody").map(|raw| {
        let b = resolve(root, raw);
        let (content_type, media) = b["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(t, m)| (t.clone(), m.clone()))
            .unwrap_or_default();
        Body {
            required: b["required"].as_bool().unwrap_or(false),
            content_type,
            schema: media.get("schema").map(|s| schema(root, s)),
        }
    });
    let responses = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, raw)| {
            let r = resolve(root, raw);
            let schema = r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .and_then(|m| m.get("schema"))
                .map(|s| kind(root, s));
            Response {
                status: status.clone(),
                description: text(&r["description"]),
                schema,
            }
        })
        .collect();
    let security = op
        .get("security")
        .or(root.get("security"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_object)
        .flat_map(|requirement| requirement.keys())
        .map(|name| scheme(root, name))
        .collect();
    let anchor = op["operationId"].as_str().map_or_else(
        || {
            format!("{method}{path}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect()
        },
        str::to_owned,
    );
    Operation {
        anchor,
        method: method.to_uppercase(),
        path: path.to_owned(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        parameters,
        body,
        responses,
        security,
    }
}

/// Follows a local `$ref` (`#/components/...`); anything else is returned as it is.
fn resolve<'a>(root: &'a Json, value: &'a Json) -> &'a Json {
    match value["$ref"].as_str() {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(value),
        None => value,
    }
}

/// The name a `$ref` points to (`Me` for `#/components/schemas/Me`).
fn ref_name(value: &Json) -> Option<&str> {
    value["$ref"].as_str().and_then(|r| r.rsplit('/').next())
}

/// A schema in a few words: `string (uuid)`, `array of Me`, `integer, 1 to 100`.
fn kind(root: &Json, raw: &Json) -> String {
    if let Some(name) = ref_name(raw) {
        return name.to_owned();
    }
    let s = resolve(root, raw);
    let mut words = match s["type"].as_str() {
        Some("array") => format!("array of {}", kind(root, &s["items"])),
        Some(t) => t.to_owned(),
        None => "any".to_owned(),
    };
    if let Some(format) = s["format"].as_str() {
        words.push_str(&format!(" ({format})"));
    }
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        words.push_str(&format!(": one of {}", values.join(", ")));
    }
    match (s.get("minimum"), s.get("maximum")) {
        (Some(min), Some(max)) => words.push_str(&format!(", {min} to {max}")),
        (Some(min), None) => words.push_str(&format!(", at least {min}")),
        (None, Some(max)) => words.push_str(&format!(", at most {max}")),
        (None, None) => {}
    }
    match (s.get("minLength"), s.get("maxLength")) {
        (Some(min), Some(max)) => words.push_str(&format!(", {min} to {max} characters")),
        (Some(min), None) => words.push_str(&format!(", at least {min} characters")),
        (None, Some(max)) => words.push_str(&format!(", at most {max} characters")),
        (None, None) => {}
    }
    if let Some(pattern) = s["pattern"].as_str() {
        words.push_str(&format!(", matching {pattern}"));
    }
    if let Some(default) = s.get("default") {
        words.push_str(&format!(", default {default}"));
    }
    if s["nullable"].as_bool() == Some(true) {
        words.push_str(", or null");
    }
    words
}

/// A request body's schema with its fields (one level: a nested object is named by its kind).
fn schema(root: &Json, raw: &Json) -> Schema {
    let s = resolve(root, raw);
    let required: Vec<&str> = s["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .collect();
    let fields = s["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, p)| Field {
            name: name.clone(),
            kind: kind(root, p),
            required: required.contains(&name.as_str()),
            description: text(&resolve(root, p)["description"]),
        })
        .collect();
    Schema {
        name: ref_name(raw).map_or_else(|| kind(root, s), str::to_owned),
        description: text(&s["description"]),
        fields,
    }
}

/// A security scheme in words, from `components.securitySchemes`.
fn scheme(root: &Json, name: &str) -> String {
    let s = &root["components"]["securitySchemes"][name];
    match (s["type"].as_str(), s["scheme"].as_str()) {
        (Some("http"), Some(scheme)) if scheme.eq_ignore_ascii_case("bearer") => {
            "Bearer token (Authorization: Bearer <token>, or Token <token>)".to_owned()
        }
        (Some("http"), Some(scheme)) => format!("HTTP {scheme}"),
        (Some("apiKey"), _) => format!(
            "API key in the {} {}",
            s["in"].as_str().unwrap_or_default(),
            s["name"].as_str().unwrap_or_default()
        ),
        _ => name.to_owned(),
    }
}

/// Splits Markdown's `code` spans from the text around them; nothing else is interpreted.
fn text(value: &Json) -> Text {
    let raw = value.as_str().unwrap_or_default();
    raw.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| Segment {
            text: part.to_owned(),
            code: i % 2 == 1,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_parses_into_every_operation() {
        let doc = parse(crate::api::OPENAPI).unwrap();
        let root: Json = serde_json::from_str(crate::api::OPENAPI).unwrap();
        let expected: usize = root["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
            .sum();
        let listed: usize = doc.groups.iter().map(|g| g.operations.len()).sum();
        assert_eq!(listed, expected);
        // example-app:begin
        let create = doc
            .groups
            .iter()
            .flat_map(|g| &g.operations)
            .find(|o| o.anchor == "createClass")
            .unwrap();
        let body = create.body.as_ref().unwrap().schema.as_ref().unwrap();
        assert_eq!(body.name, "ClassInput");
        let capacity = body.fields.iter().find(|f| f.name == "capacity").unwrap();
        assert_eq!(capacity.kind, "integer, 1 to 10000");
        assert!(!create.security.is_empty());
        assert!(create.responses.iter().any(|r| r.status == "201"));
        // example-app:end
    }

    #[test]
    fn path_parameters_and_refs_are_resolved() {
        let doc = parse(
            r##"{"info": {"title": "T", "version": "1"},
                "components": {"parameters": {"Id": {"name": "id", "in": "path", "required": true,
                    "schema": {"type": "string", "format": "uuid"}}}},
                "paths": {"/api/things/{id}": {"parameters": [{"$ref": "#/components/parameters/Id"}],
                    "get": {"tags": ["things"], "summary": "A `thing`",
                        "responses": {"200": {"description": "ok"}}}}}}"##,
        )
        .unwrap();
        let op = &doc.groups[0].operations[0];
        assert_eq!(doc.groups[0].name, "things");
        assert_eq!(op.parameters[0].name, "id");
        assert_eq!(op.parameters[0].kind, "string (uuid)");
        assert!(op.security.is_empty());
        assert_eq!(op.summary.len(), 2);
        assert!(op.summary[1].code);
        assert_eq!(op.anchor, "get-api-things--id-");
    }
}
