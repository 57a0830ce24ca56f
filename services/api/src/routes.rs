//! How routes are registered: each handler is added once, with the transform that names it
//! in the OpenAPI document; the document's operations, parameters, bodies and responses come
//! from that registration (aide reads the handler's extractor and return types). The same
//! registration gives every path its DRF 405 answer (with `Allow`), and records the table of
//! served paths and methods that the route test compares with the document.

use crate::AppState;
use crate::error::ApiError;
use aide::axum::ApiRouter;
use aide::axum::routing::ApiMethodRouter;
use aide::generate::GenContext;
use aide::openapi::OpenApi;
use aide::openapi::{Operation, Response as DocResponse, StatusCode as DocStatus};
use aide::operation::{OperationHandler, OperationInput, OperationOutput};
use aide::transform::TransformOperation;
use axum::handler::{Handler, HandlerWithoutStateExt};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use axum::{Json, Router};

/// The transform that documents one operation (summary, extra responses).
pub(crate) type Doc = fn(TransformOperation<'_>) -> TransformOperation<'_>;

/// The handlers of one path, by method, and the method names they answer.
pub(crate) struct Methods {
    router: ApiMethodRouter<AppState>,
    names: Vec<&'static str>,
}

macro_rules! method {
    ($name:ident, $with:ident, $upper:literal) => {
        pub(crate) fn $name<H, I, O, T>(mut self, handler: H, doc: Doc) -> Self
        where
            H: Handler<T, AppState> + OperationHandler<I, O>,
            I: OperationInput,
            O: OperationOutput,
            T: 'static,
        {
            self.router = self.router.$with(handler, doc);
            self.names.push($upper);
            self
        }
    };
}

impl Methods {
    pub(crate) fn new() -> Self {
        Methods {
            router: ApiMethodRouter::new(),
            names: Vec::new(),
        }
    }
    method!(get, get_with, "GET");
    method!(post, post_with, "POST");
    method!(put, put_with, "PUT");
    method!(patch, patch_with, "PATCH");
    method!(options, options_with, "OPTIONS");

    /// DRF's OPTIONS answer, on the views outside the router that have it: the view's
    /// metadata, with `Allow` (add it after the view's other methods).
    pub(crate) fn drf_options(self, view: &'static str) -> Self {
        let mut names = self.names.clone();
        names.push("OPTIONS");
        let allow = header_value(&allow(&names));
        let handler = move || {
            let allow = allow.clone();
            async move { Options(allow, Metadata::of(view)) }
        };
        self.options(handler, |o| o.summary("DRF's description of the view"))
    }

    /// The router with DRF's 405 (and `Allow`) for every other method, HEAD included
    /// (axum would answer HEAD with the GET handler).
    fn finish(self) -> (ApiMethodRouter<AppState>, Vec<&'static str>) {
        let allow = header_value(&allow(&self.names));
        let refuse = move |method: Method| {
            let allow = allow.clone();
            async move { not_allowed(method, allow) }
        };
        let router = self
            .router
            .on_service(MethodFilter::HEAD, refuse.clone().into_service())
            .fallback_service(refuse.into_service());
        (router, self.names)
    }
}

/// The `Allow` header of a view: the methods served, sorted as the original's
/// `http_method_names` (`GET, PATCH, POST, PUT`); OPTIONS, where served, last.
fn allow(names: &[&str]) -> String {
    let mut names = names.to_vec();
    names.sort_by_key(|m| (*m == "OPTIONS", *m));
    names.join(", ")
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

/// What DRF's OPTIONS answers.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct Metadata {
    name: &'static str,
    description: &'static str,
    renders: [&'static str; 1],
    parses: [&'static str; 3],
}

impl Metadata {
    fn of(name: &'static str) -> Metadata {
        Metadata {
            name,
            description: "",
            renders: ["application/json"],
            parses: [
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ],
        }
    }
}

/// A view's metadata with its `Allow`.
pub(crate) struct Options(HeaderValue, Metadata);

impl IntoResponse for Options {
    fn into_response(self) -> Response {
        let mut r = Json(self.1).into_response();
        r.headers_mut().insert(header::ALLOW, self.0);
        r
    }
}

impl OperationOutput for Options {
    type Inner = Metadata;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<DocResponse> {
        Json::<Metadata>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        Json::<Metadata>::inferred_responses(ctx, op)
    }
}

fn not_allowed(method: Method, allow: HeaderValue) -> Response {
    let mut r = ApiError::MethodNotAllowed(method.to_string()).into_response();
    r.headers_mut().insert(header::ALLOW, allow);
    r
}

/// The methods of a path that redirects whatever the method.
pub(crate) const ANY: &str = "ANY";

/// One served path and its methods (read by the route test).
#[derive(Debug, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Served {
    pub path: String,
    pub methods: Vec<&'static str>,
}

/// Routes being registered, with the table of what is served.
pub(crate) struct Routes {
    api: ApiRouter<AppState>,
    served: Vec<Served>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Routes {
            api: ApiRouter::new(),
            served: Vec::new(),
        }
    }

    fn add(mut self, path: &str, m: Methods, documented: bool) -> Self {
        let (router, methods) = m.finish();
        self.api = if documented {
            self.api.api_route(path, router)
        } else {
            self.api.route(path, router)
        };
        self.served.push(Served {
            path: path.to_owned(),
            methods,
        });
        self
    }

    /// A documented path served exactly as given.
    pub(crate) fn exact(self, path: &str, m: Methods) -> Self {
        self.add(path, m, true)
    }

    /// A path left out of the document (the document's own pages).
    pub(crate) fn hidden(self, path: &str, m: Methods) -> Self {
        self.add(path, m, false)
    }

    /// A router path (`path` without its trailing slash): served with and without the
    /// slash, documented with it.
    pub(crate) fn both(self, path: &str, build: impl Fn() -> Methods) -> Self {
        self.add(&format!("{path}/"), build(), true)
            .add(path, build(), false)
    }

    /// A path outside the router: served with the slash; without it, Django's
    /// `APPEND_SLASH` 301 for any method.
    pub(crate) fn slashed(self, path: &str, m: Methods) -> Self {
        self.slash(path, m, true)
    }

    /// [`Routes::slashed`], left out of the document.
    pub(crate) fn slashed_hidden(self, path: &str, m: Methods) -> Self {
        self.slash(path, m, false)
    }

    fn slash(mut self, path: &str, m: Methods, documented: bool) -> Self {
        self = self.add(&format!("{path}/"), m, documented);
        self.api = self
            .api
            .route(path, axum::routing::any(crate::resources::append_slash));
        self.served.push(Served {
            path: path.to_owned(),
            methods: vec![ANY],
        });
        self
    }

    /// The axum router, the OpenAPI document of its documented paths, and the table of
    /// what is served.
    pub(crate) fn finish(self) -> (Router<AppState>, OpenApi, Vec<Served>) {
        let mut api = OpenApi::default();
        let router = self
            .api
            .fallback(crate::resources::not_found)
            .finish_api(&mut api);
        (router, api, self.served)
    }
}
