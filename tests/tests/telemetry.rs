//! Telemetry for real: the services run as separate processes exporting over OTLP (the api
//! over HTTP, the others over gRPC) to a receiver inside the test, which decodes
//! `opentelemetry-proto`. One instance is retried, one is submitted by the sweep (its api
//! died after the commit); each has one trace, the first joined to its caller's
//! `traceparent`, whose spans come from every service with parents that resolve. Also: `/metrics` parses and moves, and
//! `/readyz` follows PostgreSQL down and up.

use saltant_tests::otlp::{Receiver, Span};
use saltant_tests::{Class, Options, Stack, busybox_image, eventually, psql};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const SERVICES: [&str; 4] = [
    "saltant-api",
    "saltant-scheduler",
    "saltant-executor",
    "saltant-log-collector",
];

/// One of the stack's services in a process of its own, logging warnings only and exporting
/// to `otlp`: the api over OTLP/HTTP, the others over gRPC; those serve `/metrics`, `/healthz` and `/readyz` on
/// `telemetry` while the api serves them to no client of 127.0.0.1.
fn spawn_service(
    stack: &Stack,
    otlp: &Receiver,
    args: &[&str],
    telemetry: &str,
    log: &str,
) -> std::process::Child {
    let (endpoint, protocol) = if args[0] == "api" {
        (otlp.http_endpoint.as_str(), "http/protobuf")
    } else {
        (otlp.grpc_endpoint.as_str(), "grpc")
    };
    stack.spawn_with_env(
        args,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            // Log lines only: the spans, and the stored trace context, exist anyway.
            ("RUST_LOG", "warn"),
            ("SALTANT_API__MIGRATE", "true"),
            (
                "SALTANT_API__TRACE_URL",
                "http://jaeger.example/trace/{trace_id}",
            ),
            ("SALTANT_API__TELEMETRY_FROM", "[\"10.0.0.0/8\"]"),
            ("SALTANT_TELEMETRY__LISTEN", telemetry),
        ],
        log,
    )
}

/// The spans of `trace`, once every service has sent some and `done` holds.
async fn trace_of(
    otlp: &Receiver,
    trace: &str,
    what: &str,
    done: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    eventually(Duration::from_secs(60), what, || async {
        let spans: Vec<Span> = otlp
            .received
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace)
            .collect();
        let services: HashSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
        (SERVICES.iter().all(|s| services.contains(s)) && done(&spans)).then_some(spans)
    })
    .await
}

/// Every span's parent is a span of the trace, but the root's: `root_parent` (the
/// caller's span) or none. Returns the root.
fn check_links(spans: &[Span], root_parent: &str) -> Span {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent.as_str()))
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "one root expected, got {:#?}",
        roots
            .iter()
            .map(|s| (&s.service, &s.name, &s.parent))
            .collect::<Vec<_>>()
    );
    let root = roots[0].clone();
    assert_eq!(root.parent, root_parent, "the root joins the caller's span");
    assert_eq!(root.service, "saltant-api");
    assert_eq!(root.via, "http");
    assert!(root.name.starts_with("POST /api/"), "{}", root.name);
    assert!(root.name.ends_with("taskinstances/"), "{}", root.name);
    root
}

fn names_of<'a>(spans: &'a [Span], service: &str) -> Vec<&'a str> {
    spans
        .iter()
        .filter(|s| s.service == service)
        .map(|s| s.name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_per_instance_across_processes_retries_and_the_sweep() {
    let otlp = Receiver::start().await;
    let stack = Stack::start_opts(Options {
        no_all: true,
        env: &[
            ("SALTANT_SCHEDULER__SWEEP_EVERY_SECS", "1"),
            ("SALTANT_SCHEDULER__RETRY_BACKOFF_SECS", "1"),
            ("SALTANT_SCHEDULER__RESUBMIT_AFTER_SECS", "3"),
        ],
        ..Options::default()
    })
    .await;
    let services = [
        vec!["api"],
        vec!["scheduler"],
        vec!["executor", "--queue", "tq", "--queue", "cq"],
        vec!["log-collector"],
    ];
    let ports: Vec<String> = services
        .iter()
        .map(|_| format!("127.0.0.1:{}", saltant_tests::servers::free_port()))
        .collect();
    let mut children: Vec<std::process::Child> = services
        .iter()
        .zip(&ports)
        .map(|(args, port)| {
            let log = format!("{}.log", args[0]);
            spawn_service(&stack, &otlp, args, port, &log)
        })
        .collect();
    stack.wait_ready().await;
    // Each service answers its probes on its own port; the api's are not for 127.0.0.1
    // (not in its api.telemetry_from here).
    for (args, port) in services.iter().zip(&ports) {
        let readyz = format!("http://{port}/readyz");
        let body = eventually(Duration::from_secs(30), &readyz, || async {
            let r = stack.http.get(&readyz).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            r.text().await.ok()
        })
        .await;
        assert!(body.contains(&format!("{}.nats", args[0])), "{body}");
        let metrics = stack
            .http
            .get(format!("http://{port}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap_or_default();
        assert!(text.contains("# TYPE saltant_"), "{text}");
    }
    let base = stack.url.trim_end_matches("/api");
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = stack
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("probe");
        assert_eq!(r.status(), 404, "{path} is not for 127.0.0.1 here");
    }
    // Fails its first attempt, succeeds its second; prints the TRACEPARENT it was given.
    let flag = stack.dir.join("flaky.flag");
    let command = format!(
        "sh -c 'echo TP=$TRACEPARENT; test -e {f} && exit 0; touch {f}; exit 1'",
        f = flag.display()
    );
    let (ty, q) = stack.executable_on_queue("flaky", &command, "tq").await;

    // 1. A retried instance, created by a caller with a trace of its own.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (status, _, body) = stack
        .request(
            "POST",
            "executabletaskinstances/",
            &[
                ("Authorization", &stack.auth()),
                (
                    "traceparent",
                    &format!("00-{caller_trace}-{caller_span}-01"),
                ),
            ],
            Some((
                "application/json",
                json!({"task_type": ty, "task_queue": q, "max_attempts": 2, "arguments": {}})
                    .to_string()
                    .into_bytes(),
            )),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let retried = body["uuid"].as_str().expect("uuid").to_owned();
    stack
        .wait_state_of(
            Class::Executable,
            &retried,
            "successful",
            Duration::from_secs(60),
        )
        .await;
    // The native endpoint names the trace and links to it.
    let (status, t) = stack.get(&format!("taskinstances/{retried}/trace/")).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["trace_id"], caller_trace, "{t}");
    assert_eq!(
        t["url"],
        format!("http://jaeger.example/trace/{caller_trace}"),
        "{t}"
    );
    let spans = trace_of(&otlp, caller_trace, "the retried instance's spans", |s| {
        let runs = s.iter().filter(|s| s.name == "run instance").count();
        let stores = s.iter().filter(|s| s.name == "store output").count();
        runs == 2 && stores >= 2 && s.iter().any(|s| s.name == "resubmit")
    })
    .await;
    check_links(&spans, caller_span);
    let attempts: HashSet<&str> = spans
        .iter()
        .filter(|s| s.name == "run instance")
        .map(|s| s.attributes.get("attempt").map_or("", |a| a.as_str()))
        .collect();
    assert_eq!(
        attempts,
        HashSet::from(["1", "2"]),
        "both attempts ran in the trace"
    );
    let failed_run = spans
        .iter()
        .find(|s| s.name == "run instance" && s.attributes.get("attempt").is_some_and(|a| a == "1"))
        .expect("first attempt");
    assert!(failed_run.error, "a failed attempt's span has error status");
    for (service, expected) in [
        (
            "saltant-scheduler",
            ["dispatch", "resubmit", "record event"].as_slice(),
        ),
        (
            "saltant-executor",
            [
                "run instance",
                "claim",
                "start process",
                "wait for exit",
                "upload results",
            ]
            .as_slice(),
        ),
        ("saltant-log-collector", ["store output"].as_slice()),
    ] {
        let names = names_of(&spans, service);
        for name in expected {
            assert!(
                names.contains(name),
                "{service} sent no {name:?} span: {names:?}"
            );
        }
        assert!(
            spans
                .iter()
                .filter(|s| s.service == service)
                .all(|s| s.via == "grpc"),
            "{service} exports over gRPC"
        );
    }
    // TRACEPARENT inside the task names this trace and a span of the run of the attempt
    // that printed it.
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let run_of = |id: &str| {
        let mut at = by_id.get(id).copied();
        while let Some(s) = at {
            if s.name == "run instance" {
                return s.attributes.get("attempt").cloned();
            }
            at = by_id.get(s.parent.as_str()).copied();
        }
        None
    };
    stack.output_of(&retried, "stdout").await; // both attempts' output stored
    for (attempt, name) in [
        ("1", format!("{retried}-stdout.txt")),
        ("2", format!("{retried}-attempt2-stdout.txt")),
    ] {
        let (status, _, text) = eventually(Duration::from_secs(30), &name, || async {
            let r = stack.download_log(&retried, &name).await;
            (r.0 == 200 && r.2.as_str().is_some_and(|t| t.contains("TP="))).then_some(r)
        })
        .await;
        assert_eq!(status, 200);
        let output = text.as_str().unwrap_or_default();
        let given: Vec<&str> = output
            .lines()
            .filter_map(|l| l.strip_prefix("TP="))
            .collect();
        assert_eq!(
            given.len(),
            1,
            "attempt {attempt} printed one TRACEPARENT: {output:?}"
        );
        let parts: Vec<&str> = given[0].split('-').collect();
        assert_eq!(parts.len(), 4, "{given:?}");
        assert_eq!(
            parts[1], caller_trace,
            "TRACEPARENT is in the instance's trace"
        );
        assert_eq!(
            run_of(parts[2]).as_deref(),
            Some(attempt),
            "TRACEPARENT {given:?} names a span of attempt {attempt}'s run"
        );
    }

    // 2. An instance committed by an api that died before it could submit it (its row
    // alone, with the trace it began): the sweep submits it, in that trace.
    let missed = uuid::Uuid::new_v4().to_string();
    let (missed_trace, api_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    psql(
        &stack.database_url(),
        &format!(
            "INSERT INTO task_instances (uuid, kind, name, user_id, task_queue_id, \
               executable_task_type_id, arguments, spec, queue_name, trace_id, trace_parent) \
             SELECT '{missed}', kind, 'missed', user_id, task_queue_id, executable_task_type_id, \
               arguments, spec, queue_name, '{missed_trace}', '00-{missed_trace}-{api_span}-01' \
             FROM task_instances WHERE uuid = '{retried}'"
        ),
    );
    stack
        .wait_state_of(
            Class::Executable,
            &missed,
            "successful",
            Duration::from_secs(90),
        )
        .await;
    let spans = eventually(
        Duration::from_secs(60),
        "the swept instance's spans",
        || async {
            let spans: Vec<Span> = otlp
                .received
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == missed_trace)
                .collect();
            let done = ["resubmit", "dispatch", "run instance", "store output"]
                .iter()
                .all(|n| spans.iter().any(|s| s.name == *n));
            done.then_some(spans)
        },
    )
    .await;
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let resubmit = spans
        .iter()
        .find(|s| s.name == "resubmit")
        .expect("resubmit");
    assert_eq!(
        resubmit.parent, api_span,
        "the sweep continues the api's span"
    );
    for s in &spans {
        assert!(
            s.span_id == resubmit.span_id || ids.contains(s.parent.as_str()),
            "{} {:?} has a parent outside the trace",
            s.service,
            s.name
        );
    }
    let dispatch = spans
        .iter()
        .find(|s| s.name == "dispatch")
        .expect("dispatch");
    assert_eq!(
        dispatch.parent, resubmit.span_id,
        "the dispatch continues the sweep's submission"
    );

    // 3. A container task: the engine's steps are spans of its trace, and TRACEPARENT
    // reaches inside the container.
    let (cty, cqs) = stack
        .type_on_queues(
            Class::Container,
            &json!({
                "name": "traced",
                "command_to_run": "sh -c 'echo TP=$TRACEPARENT'",
                "container_image": busybox_image(),
                "container_type": "docker",
            }),
            &["cq".to_owned()],
        )
        .await;
    let boxed = stack.create(Class::Container, cty, cqs[0], json!({})).await;
    stack
        .wait_state_of(
            Class::Container,
            &boxed,
            "successful",
            Duration::from_secs(90),
        )
        .await;
    let (_, t) = stack.get(&format!("taskinstances/{boxed}/trace/")).await;
    let trace = t["trace_id"].as_str().expect("trace id").to_owned();
    // `run instance` ends last (after the final event): wait for it before checking links.
    let spans = trace_of(&otlp, &trace, "the container instance's spans", |s| {
        [
            "start container",
            "wait for exit",
            "store output",
            "run instance",
        ]
        .iter()
        .all(|n| s.iter().any(|s| s.name == *n))
    })
    .await;
    check_links(&spans, "");
    let names = names_of(&spans, "saltant-executor");
    for name in [
        "ensure image",
        "create container",
        "start container",
        "wait for exit",
    ] {
        assert!(names.contains(&name), "no {name:?} span: {names:?}");
    }
    let output = stack.output_of(&boxed, "stdout").await;
    let tp = output
        .lines()
        .find_map(|l| l.strip_prefix("TP="))
        .unwrap_or_default();
    assert!(
        tp.split('-').nth(1) == Some(trace.as_str()),
        "TRACEPARENT in the container: {output:?}"
    );

    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Samples of a metric (any labels) in a text exposition parsed by `prometheus-parse`.
fn samples(text: &str, name: &str) -> Vec<(HashMap<String, String>, f64)> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid Prometheus exposition");
    scrape
        .samples
        .into_iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            (
                s.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                value,
            )
        })
        .collect()
}

fn total(text: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    samples(text, name)
        .into_iter()
        .filter(|(l, _)| label.is_none_or(|(k, v)| l.get(k).is_some_and(|x| x == v)))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_and_readiness_follows_postgres() {
    let stack = Stack::start_opts(Options {
        own_postgres: true,
        env: &[("SALTANT_SCHEDULER__METRICS_EVERY_SECS", "1")],
        ..Options::default()
    })
    .await;
    stack.wait_ready().await;
    let base = stack.url.trim_end_matches("/api").to_owned();
    let scrape = || async {
        let r = stack
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(r.status(), 200);
        r.text().await.expect("metrics text")
    };
    // Methods a client invents share one label value.
    for m in ["FOO1", "FOO2"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).expect("method");
        stack
            .http
            .request(method, format!("{}/users/", stack.url))
            .send()
            .await
            .expect("odd method");
    }
    let before = scrape().await;
    let methods: HashSet<String> = samples(&before, "saltant_http_requests_total")
        .into_iter()
        .filter_map(|(l, _)| l.get("method").cloned())
        .collect();
    assert!(methods.contains("_OTHER"), "{methods:?}");
    assert!(!methods.iter().any(|m| m.starts_with("FOO")), "{methods:?}");
    let (ty, q) = stack
        .executable_on_queue("talk", "sh -c 'echo hello; echo oops >&2'", "mq")
        .await;
    let mut uuids = Vec::new();
    for _ in 0..3 {
        uuids.push(stack.run_executable(ty, q, json!({})).await);
    }
    for u in &uuids {
        stack
            .wait_state_of(Class::Executable, u, "successful", Duration::from_secs(60))
            .await;
    }
    let after = eventually(
        Duration::from_secs(30),
        "gauges and log counters",
        || async {
            let text = scrape().await;
            let done = total(&text, "saltant_log_stored_bytes_total", None) > 0.0
                && total(&text, "saltant_queue_waiting", Some(("queue", "mq"))) == 0.0
                && !samples(&text, "saltant_queue_waiting").is_empty();
            done.then_some(text)
        },
    )
    .await;
    let grew = |name: &str, label: Option<(&str, &str)>| {
        let (b, a) = (total(&before, name, label), total(&after, name, label));
        assert!(a > b, "{name} {label:?} did not move: {b} → {a}");
    };
    grew(
        "saltant_http_requests_total",
        Some(("route", "/api/executabletaskinstances/")),
    );
    grew("saltant_http_request_duration_seconds_count", None);
    grew(
        "saltant_events_recorded_total",
        Some(("state", "successful")),
    );
    grew(
        "saltant_dispatch_latency_seconds_count",
        Some(("queue", "mq")),
    );
    grew("saltant_start_latency_seconds_count", Some(("queue", "mq")));
    grew(
        "saltant_run_duration_seconds_count",
        Some(("state", "successful")),
    );
    grew("saltant_log_bytes_total", Some(("stream", "stderr")));
    grew("saltant_log_stored_chunks_total", None);
    // Each instance, attempt and state is counted once, whoever repeated its event.
    let recorded = |state: &str| -> f64 {
        samples(&after, "saltant_events_recorded_total")
            .into_iter()
            .filter(|(l, _)| {
                l.get("queue").is_some_and(|q| q == "mq")
                    && l.get("state").is_some_and(|s| s == state)
            })
            .map(|(_, v)| v)
            .sum()
    };
    for state in ["published", "running", "successful"] {
        assert_eq!(recorded(state), 3.0, "{state} recorded once per instance");
    }
    // Finished instances are not in the gauge (their events are counted); a running one
    // is, and leaves it when it ends.
    assert_eq!(
        total(&after, "saltant_instances", Some(("queue", "mq"))),
        0.0
    );
    let (sty, sq) = stack.executable_on_queue("sleeper", "sleep 60", "sq").await;
    let sleeper = stack.run_executable(sty, sq, json!({})).await;
    stack
        .wait_state_of(
            Class::Executable,
            &sleeper,
            "running",
            Duration::from_secs(60),
        )
        .await;
    eventually(
        Duration::from_secs(30),
        "the running instance in the gauge",
        || async {
            let text = scrape().await;
            let running = total(&text, "saltant_instances", Some(("queue", "sq")));
            (running == 1.0
                && samples(&text, "saltant_instances")
                    .iter()
                    .any(|(l, v)| l.get("state").is_some_and(|s| s == "running") && *v >= 1.0))
            .then_some(())
        },
    )
    .await;
    stack.terminate_instance(Class::Executable, &sleeper).await;
    eventually(
        Duration::from_secs(30),
        "the ended instance out of the gauge",
        || async {
            let text = scrape().await;
            (total(&text, "saltant_instances", Some(("queue", "sq"))) == 0.0).then_some(())
        },
    )
    .await;
    let slots = samples(&after, "saltant_executor_slots");
    assert!(
        slots
            .iter()
            .any(|(l, _)| l.get("state").is_some_and(|s| s == "free")),
        "{slots:?}"
    );
    assert!(
        !samples(&after, "saltant_consumer_pending").is_empty(),
        "consumer lag gauges are read"
    );
    assert!(!samples(&after, "saltant_queue_waiting").is_empty());

    // Health: alive always; ready while PostgreSQL answers, 503 while it is down.
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        let http = stack.http.clone();
        async move {
            let r = http.get(url).send().await.expect("probe");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let pg = stack.postgres.as_ref().expect("own postgres");
    pg.down();
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("postgres"), "{body}");
    assert_eq!(get("/healthz").await.0, 200, "alive while not ready");
    // The scheduler's gauges (every second) fail meanwhile, and are counted.
    eventually(
        Duration::from_secs(30),
        "PostgreSQL errors counted",
        || async {
            (total(&scrape().await, "saltant_postgres_errors_total", None) > 0.0).then_some(())
        },
    )
    .await;
    pg.up();
    eventually(Duration::from_secs(30), "ready again", || async {
        (get("/readyz").await.0 == 200).then_some(())
    })
    .await;
}
