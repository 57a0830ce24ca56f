//! An OTLP trace receiver inside the test: OTLP/gRPC and OTLP/HTTP (protobuf) on
//! 127.0.0.1, decoding `opentelemetry-proto`, keeping every span it is sent.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A received span, ids in lowercase hex.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    /// How it came: `grpc` or `http`.
    pub via: &'static str,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent: String,
    pub name: String,
    pub attributes: HashMap<String, String>,
    /// Status code ERROR.
    pub error: bool,
}

#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<Span>>>);

impl Received {
    pub fn spans(&self) -> Vec<Span> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn take(&self, request: ExportTraceServiceRequest, via: &'static str) {
        let mut spans = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for rs in request.resource_spans {
            let resource = rs.resource.map(|r| attributes(&r.attributes));
            let service = resource
                .as_ref()
                .and_then(|r| r.get("service.name").cloned())
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Span {
                        service: service.clone(),
                        via,
                        trace_id: hex::encode(&s.trace_id),
                        span_id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name.clone(),
                        attributes: attributes(&s.attributes),
                        error: s.status.is_some_and(|st| st.code == 2),
                    });
                }
            }
        }
    }
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

struct Grpc(Received);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.take(request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The receiver's endpoints: set `OTEL_EXPORTER_OTLP_ENDPOINT` to one of them (with
/// `OTEL_EXPORTER_OTLP_PROTOCOL` `grpc` or `http/protobuf`).
pub struct Receiver {
    pub received: Received,
    pub grpc_endpoint: String,
    pub http_endpoint: String,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let received = Received::default();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind otlp grpc");
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind otlp http");
        let grpc_endpoint = format!("http://{}", grpc.local_addr().expect("addr"));
        let http_endpoint = format!("http://{}", http.local_addr().expect("addr"));
        let service = TraceServiceServer::new(Grpc(received.clone()));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc)),
        );
        let r = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let r = r.clone();
                async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(req) => {
                            r.take(req, "http");
                            (
                                axum::http::StatusCode::OK,
                                [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                                ExportTraceServiceResponse {
                                    partial_success: None,
                                }
                                .encode_to_vec(),
                            )
                        }
                        Err(_) => (
                            axum::http::StatusCode::BAD_REQUEST,
                            [(axum::http::header::CONTENT_TYPE, "text/plain")],
                            b"not an ExportTraceServiceRequest".to_vec(),
                        ),
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(http, app).await });
        Receiver {
            received,
            grpc_endpoint,
            http_endpoint,
        }
    }
}
