//! The typed edges of handlers: path parameters, request bodies, list requests and
//! answers. Each type both does its job at run time and describes itself in the OpenAPI
//! document (aide's `OperationInput`/`OperationOutput`), so a handler's signature is its
//! documentation.

use crate::AppState;
use crate::auth::Auth;
use crate::body::Payload;
use crate::error::{ApiError, ApiResult};
use crate::query::{FilterField, Query, filters, paginate, stream_page};
use aide::generate::GenContext;
use aide::openapi::{
    MediaType, Operation, Parameter, ParameterData, ParameterSchemaOrContent, ReferenceOr,
    RequestBody, Response as DocResponse, SchemaObject, StatusCode as DocStatus,
};
use aide::operation::{OperationInput, OperationOutput, add_parameters};
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use indexmap::IndexMap;
use saltant_store::{Filter, Page as StorePage, Store};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};
use std::marker::PhantomData;

pub(crate) fn schema_object(json_schema: schemars::Schema) -> SchemaObject {
    SchemaObject {
        json_schema,
        example: None,
        external_docs: None,
    }
}

pub(crate) fn param(
    name: &str,
    path: bool,
    description: Option<String>,
    schema: Value,
) -> Parameter {
    let data = ParameterData {
        name: name.to_owned(),
        description,
        required: path,
        deprecated: None,
        format: ParameterSchemaOrContent::Schema(schema_object(
            schemars::Schema::try_from(schema).unwrap_or_default(),
        )),
        example: None,
        examples: IndexMap::default(),
        explode: None,
        extensions: IndexMap::default(),
    };
    if path {
        Parameter::Path {
            parameter_data: data,
            style: Default::default(),
        }
    } else {
        Parameter::Query {
            parameter_data: data,
            allow_reserved: false,
            style: Default::default(),
            allow_empty_value: None,
        }
    }
}

// ---- path parameters

/// `{id}`: an integer primary key; anything else is the 404 DRF's lookup gives.
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        raw.parse().map(PathId).map_err(|_| ApiError::NotFound)
    }
}

impl OperationInput for PathId {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        add_parameters(
            ctx,
            op,
            [param("id", true, None, json!({"type": "integer"}))],
        );
    }
}

/// Text path parameters, checked by the handler.
macro_rules! text_param {
    ($(#[$doc:meta])* $name:ident, $param:literal, $schema:tt) => {
        $(#[$doc])*
        pub struct $name(pub String);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let Path(raw) = Path::<String>::from_request_parts(parts, state)
                    .await
                    .map_err(|_| ApiError::NotFound)?;
                Ok($name(raw))
            }
        }

        impl OperationInput for $name {
            fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
                add_parameters(ctx, op, [param($param, true, None, json!($schema))]);
            }
        }
    };
}

text_param!(
    /// `{uuid}` of an instance.
    PathUuid,
    "uuid",
    {"type": "string", "format": "uuid"}
);
text_param!(
    /// `{username}` of a user (the original's lookup, `[^/.]+`, matches no `.`: such a
    /// name is not found).
    PathUsername,
    "username",
    {"type": "string", "pattern": "^[^/.]+$"}
);

/// `?attempt=`: an attempt number (1 and up); a value that is not one finds nothing (404).
pub struct QueryAttempt(pub Option<i32>);

impl<S: Send + Sync> FromRequestParts<S> for QueryAttempt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match Query::from_uri(&parts.uri).get("attempt") {
            None => Ok(QueryAttempt(None)),
            Some(v) => match v.parse() {
                Ok(n) if n >= 1 => Ok(QueryAttempt(Some(n))),
                _ => Err(ApiError::NotFound),
            },
        }
    }
}

impl OperationInput for QueryAttempt {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let about = "The attempt (default: the one the file name gives, else 1).";
        let schema = json!({"type": "integer", "minimum": 1});
        add_parameters(
            ctx,
            op,
            [param("attempt", false, Some(about.into()), schema)],
        );
    }
}

/// The absolute URL of a listing of files, without its final slash: a file's URL is this
/// plus `/<name>`.
pub struct FilesUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for FilesUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let url = crate::query::absolute_url(&parts.uri, &parts.headers, &[]);
        Ok(FilesUrl(url.trim_end_matches('/').to_owned()))
    }
}

impl OperationInput for FilesUrl {}

// ---- request bodies

/// A request body (JSON, form-urlencoded or multipart, read by DRF's rules into a
/// [`Payload`]) documented as the fields of `T`; with `PARTIAL` (a PATCH), none of them
/// required.
pub struct Input<T, const PARTIAL: bool = false>(pub Payload, pub PhantomData<fn() -> T>);

impl<T, const PARTIAL: bool> FromRequest<AppState> for Input<T, PARTIAL> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Ok(Input(Payload::from_request(req, state).await?, PhantomData))
    }
}

impl<T: JsonSchema, const PARTIAL: bool> OperationInput for Input<T, PARTIAL> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let mut schema = ctx.schema.subschema_for::<T>();
        if PARTIAL {
            // The fields' own schema, inline, without its list of required fields.
            let definition = ctx.schema.definitions().get(T::schema_name().as_ref());
            if let Some(Value::Object(fields)) = definition {
                let mut fields = fields.clone();
                fields.remove("required");
                schema = schemars::Schema::from(fields);
            }
        }
        let media = |s: &schemars::Schema| MediaType {
            schema: Some(schema_object(s.clone())),
            ..Default::default()
        };
        op.request_body = Some(ReferenceOr::Item(RequestBody {
            required: true,
            content: IndexMap::from_iter([
                ("application/json".into(), media(&schema)),
                ("application/x-www-form-urlencoded".into(), media(&schema)),
            ]),
            ..Default::default()
        }));
    }
}

impl OperationInput for Payload {}
impl OperationInput for Auth {}

// ---- answers

/// A JSON answer with status `N` (201 for creations, 202 for terminations).
pub struct Status<const N: u16, T>(pub T);

pub type Created<T> = Status<201, T>;
pub type Accepted<T> = Status<202, T>;

impl<const N: u16, T: Serialize> IntoResponse for Status<N, T> {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(N).unwrap_or(StatusCode::OK);
        (status, Json(self.0)).into_response()
    }
}

impl<const N: u16, T: JsonSchema> OperationOutput for Status<N, T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<DocResponse> {
        Json::<T>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        Self::operation_response(ctx, op)
            .map(|r| vec![(Some(DocStatus::Code(N)), with_description(r, "success"))])
            .unwrap_or_default()
    }
}

fn with_description(mut r: DocResponse, text: &str) -> DocResponse {
    if r.description.is_empty() {
        r.description = text.to_owned();
    }
    r
}

/// What a list answers: DRF's page, documented with `T` as the item.
#[derive(JsonSchema)]
#[schemars(rename = "PageOf{T}")]
#[allow(dead_code)]
struct PageOf<T> {
    count: u64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<T>,
}

/// A streamed page of `T` (see `query::stream_page`).
pub struct Page<T>(pub Response, PhantomData<T>);

impl<T> Page<T> {
    pub fn new(r: Response) -> Self {
        Page(r, PhantomData)
    }
}

impl<T> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<T: JsonSchema> OperationOutput for Page<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<DocResponse> {
        Json::<PageOf<T>>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        Self::operation_response(ctx, op)
            .map(|r| vec![(Some(DocStatus::Code(200)), with_description(r, "success"))])
            .unwrap_or_default()
    }
}

/// A list resource: the filters it takes and its default page size.
pub trait Listed {
    const FILTERS: &'static [FilterField];
    const PAGE_SIZE: i64;
}

/// A list request: its query (filters, `page`, `page_size`) and what the page links need.
pub struct Listing<L> {
    pub query: Query,
    pub uri: Uri,
    pub headers: HeaderMap,
    _list: PhantomData<fn() -> L>,
}

impl<L: Listed> Listing<L> {
    /// The filters the query asks for (django-filter's 400s for bad values and for ids
    /// that name no row).
    pub async fn filters(&self, store: &Store) -> ApiResult<Vec<Filter>> {
        filters(&self.query, L::FILTERS).checked(store).await
    }

    /// The page asked for, out of `count` rows; `turn` (the user's turn to list) is held
    /// until the last row is sent.
    pub fn page<T: Serialize + Send + 'static>(
        &self,
        count: i64,
        turn: tokio::sync::OwnedSemaphorePermit,
        rows: impl FnOnce(StorePage) -> BoxStream<'static, Result<T, saltant_store::Error>>,
    ) -> ApiResult<Page<T>> {
        use futures::StreamExt;
        let p = paginate(&self.query, &self.uri, &self.headers, L::PAGE_SIZE, count)?;
        let rows = rows(p.page)
            .map(move |row| {
                let _turn = &turn;
                row
            })
            .boxed();
        Ok(Page::new(stream_page(count, p, rows)))
    }
}

impl<S: Send + Sync, L> FromRequestParts<S> for Listing<L> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Page links name the path as requested (with a format suffix, if any).
        let uri = match parts.extensions.get::<OriginalUri>() {
            Some(OriginalUri(original)) => original.clone(),
            None => parts.uri.clone(),
        };
        Ok(Listing {
            query: Query::from_uri(&parts.uri),
            uri,
            headers: parts.headers.clone(),
            _list: PhantomData,
        })
    }
}

impl<L: Listed> OperationInput for Listing<L> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        let text = json!({"type": "string"});
        let mut params = vec![
            param(
                "page",
                false,
                Some("1-based page number, or `last`".into()),
                text.clone(),
            ),
            param(
                "page_size",
                false,
                Some(format!(
                    "Items per page (default {}, no maximum)",
                    L::PAGE_SIZE
                )),
                json!({"type": "integer"}),
            ),
        ];
        for f in L::FILTERS {
            for lookup in f.kind.lookups() {
                let name = match *lookup {
                    "exact" => f.name.to_owned(),
                    l => format!("{}__{l}", f.name),
                };
                params.push(param(&name, false, None, text.clone()));
            }
        }
        add_parameters(ctx, op, params);
    }
}

// ---- errors

impl OperationOutput for ApiError {
    type Inner = Value;

    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<DocStatus>, DocResponse)> {
        let schema = ctx.schema.subschema_for::<crate::openapi::Error>();
        [
            (400, "invalid input"),
            (403, "missing or bad credentials, or not permitted"),
            (404, "not found"),
            (503, "database or bus unavailable; retry"),
        ]
        .into_iter()
        .map(|(code, why)| {
            let response = DocResponse {
                description: why.into(),
                content: IndexMap::from_iter([(
                    "application/json".into(),
                    MediaType {
                        schema: Some(schema_object(schema.clone())),
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            };
            (Some(DocStatus::Code(code)), response)
        })
        .collect()
    }
}
