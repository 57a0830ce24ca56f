//! Raw HTTP against the real api: every path × method × auth scheme, and owner / other
//! user / superuser on every write. Failures are collected and reported together.

use saltant_tests::Stack;
use serde_json::{Value, json};

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"];

struct Fixture {
    exec_type: i64,
    ctr_type: i64,
    queue: i64,
    whitelist: i64,
    exec_instance: String,
    ctr_instance: String,
}

async fn fixture(stack: &Stack) -> Fixture {
    let (status, ct) = stack
        .post_json(
            "containertasktypes/",
            &json!({"name": "ct", "command_to_run": "true", "container_image": "busybox:local", "container_type": "docker"}),
        )
        .await;
    assert_eq!(status, 201, "{ct}");
    let (status, et) = stack
        .post_json(
            "executabletasktypes/",
            &json!({"name": "et", "command_to_run": "true"}),
        )
        .await;
    assert_eq!(status, 201, "{et}");
    let (status, wl) = stack
        .post_json(
            "taskwhitelists/",
            &json!({"name": "wl", "whitelisted_executable_task_types": [et["id"]], "whitelisted_container_task_types": [ct["id"]]}),
        )
        .await;
    assert_eq!(status, 201, "{wl}");
    // Served by nobody: instances stay queued, nothing runs.
    let (status, q) = stack
        .post_json(
            "taskqueues/",
            &json!({"name": "nobody", "whitelists": [wl["id"]]}),
        )
        .await;
    assert_eq!(status, 201, "{q}");
    let (status, ei) = stack
        .post_json(
            "executabletaskinstances/",
            &json!({"task_type": et["id"], "task_queue": q["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{ei}");
    let (status, ci) = stack
        .post_json(
            "containertaskinstances/",
            &json!({"task_type": ct["id"], "task_queue": q["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{ci}");
    Fixture {
        exec_type: et["id"].as_i64().expect("id"),
        ctr_type: ct["id"].as_i64().expect("id"),
        queue: q["id"].as_i64().expect("id"),
        whitelist: wl["id"].as_i64().expect("id"),
        exec_instance: ei["uuid"].as_str().expect("uuid").to_owned(),
        ctr_instance: ci["uuid"].as_str().expect("uuid").to_owned(),
    }
}

/// (path, allowed methods besides the implicit ones). Router paths refuse OPTIONS and
/// HEAD; the token and status views allow OPTIONS.
fn paths(f: &Fixture) -> Vec<(String, Vec<&'static str>)> {
    let mut paths = vec![
        ("".into(), vec!["GET"]),
        ("users/".into(), vec!["GET"]),
        ("users/admin/".into(), vec!["GET"]),
        ("containertasktypes/".into(), vec!["GET", "POST"]),
        (
            format!("containertasktypes/{}/", f.ctr_type),
            vec!["GET", "PUT"],
        ),
        ("executabletasktypes/".into(), vec!["GET", "POST"]),
        (
            format!("executabletasktypes/{}/", f.exec_type),
            vec!["GET", "PUT"],
        ),
        ("taskqueues/".into(), vec!["GET", "POST"]),
        (
            format!("taskqueues/{}/", f.queue),
            vec!["GET", "PUT", "PATCH"],
        ),
        ("taskwhitelists/".into(), vec!["GET", "POST"]),
        (
            format!("taskwhitelists/{}/", f.whitelist),
            vec!["GET", "PUT", "PATCH"],
        ),
        (
            format!("updatetaskinstancestatus/{}/", f.exec_instance),
            vec!["PATCH", "OPTIONS"],
        ),
        ("token/".into(), vec!["POST", "OPTIONS"]),
        ("token/refresh/".into(), vec!["POST", "OPTIONS"]),
    ];
    for (class, uuid) in [
        ("containertaskinstances", &f.ctr_instance),
        ("executabletaskinstances", &f.exec_instance),
    ] {
        paths.push((format!("{class}/"), vec!["GET", "POST"]));
        paths.push((format!("{class}/{uuid}/"), vec!["GET"]));
        paths.push((format!("{class}/{uuid}/clone/"), vec!["POST"]));
        paths.push((format!("{class}/{uuid}/terminate/"), vec!["POST"]));
    }
    paths
}

/// The `Allow` header of a 405, as the original's views send it: the methods the view
/// serves, in the order of their `http_method_names` (alphabetical), OPTIONS last; never
/// HEAD.
fn allow_header(allowed: &[&str]) -> String {
    let mut methods = allowed.to_vec();
    methods.sort_by_key(|m| (*m == "OPTIONS", *m));
    methods.join(", ")
}

/// An auth scheme to try: its name, its headers, the status it must get (None: any
/// answer that is not a refusal).
type Scheme<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<u16>);

fn is_open(path: &str) -> bool {
    path.starts_with("token/")
}

#[tokio::test]
async fn every_path_method_and_auth_scheme() {
    let stack = Stack::start_with(&["--queue", "busy"]).await;
    stack.wait_ready().await;
    let f = fixture(&stack).await;
    let token = format!("Token {}", stack.token);

    // A JWT access token and a browser session for the admin.
    stack.saltant(&[
        "admin",
        "set-password",
        "admin",
        "--password",
        "pw-of-admin",
    ]);
    let (status, _, jwt) = stack
        .request(
            "POST",
            "token/",
            &[],
            Some((
                "application/x-www-form-urlencoded",
                b"username=admin&password=pw-of-admin".to_vec(),
            )),
        )
        .await;
    assert_eq!(status, 200, "{jwt}");
    let bearer = format!("Bearer {}", jwt["access"].as_str().expect("access"));
    let (status, headers, login) = stack
        .login(&json!({"username": "admin", "password": "pw-of-admin"}))
        .await;
    assert_eq!(status, 200, "{login}");
    let cookies: Vec<String> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            v.to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair")
                .to_owned()
        })
        .collect();
    let cookie = cookies.join("; ");
    let csrf = login["csrftoken"].as_str().expect("csrf").to_owned();

    let mut failures = Vec::new();
    for (path, allowed) in paths(&f) {
        for method in METHODS {
            let (status, headers, body) = stack
                .request(method, &path, &[("Authorization", &token)], None)
                .await;
            if status >= 500 {
                failures.push(format!("{method} {path}: {status} {body}"));
            }
            let allowed_here = allowed.contains(&method);
            if !allowed_here {
                let allow = headers.get("allow").and_then(|v| v.to_str().ok());
                if status != 405 {
                    failures.push(format!("{method} {path}: {status}, expected 405"));
                } else if method != "HEAD"
                    && body != json!({"detail": format!("Method \"{method}\" not allowed.")})
                {
                    failures.push(format!("{method} {path}: 405 body {body}"));
                } else if allow != Some(allow_header(&allowed).as_str()) {
                    failures.push(format!("{method} {path}: 405 with Allow {allow:?}"));
                }
                continue;
            }
            if status == 405 || status == 404 {
                failures.push(format!(
                    "{method} {path}: {status} for an allowed method: {body}"
                ));
            }
            if is_open(&path) || method == "OPTIONS" {
                continue;
            }
            // Every scheme, for an allowed method.
            let schemes: [Scheme; 7] = [
                ("none", vec![], Some(403)),
                (
                    "unknown token",
                    vec![(
                        "Authorization",
                        "Token 0123456789abcdef0123456789abcdef01234567",
                    )],
                    Some(403),
                ),
                ("empty token", vec![("Authorization", "Token")], Some(403)),
                (
                    "bad bearer",
                    vec![("Authorization", "Bearer not.a.jwt")],
                    Some(403),
                ),
                ("bearer", vec![("Authorization", bearer.as_str())], None),
                (
                    "session",
                    vec![("Cookie", cookie.as_str()), ("X-CSRFToken", csrf.as_str())],
                    None,
                ),
                (
                    "session without csrf",
                    vec![("Cookie", cookie.as_str())],
                    if method == "GET" { None } else { Some(403) },
                ),
            ];
            for (name, headers, expect) in schemes {
                let (status, _, body) = stack.request(method, &path, &headers, None).await;
                match expect {
                    Some(code) if status != code => failures.push(format!(
                        "{method} {path} with {name}: {status}, expected {code}: {body}"
                    )),
                    None if status == 403 || status == 401 || status >= 500 => {
                        failures.push(format!("{method} {path} with {name}: {status} {body}"))
                    }
                    _ => {}
                }
            }
        }
    }
    // The original's 403 bodies.
    for (headers, expected) in [
        (
            vec![],
            json!({"detail": "Authentication credentials were not provided."}),
        ),
        (
            vec![(
                "Authorization",
                "Token 0123456789abcdef0123456789abcdef01234567",
            )],
            json!({"detail": "Invalid token."}),
        ),
        (
            vec![("Authorization", "Token")],
            json!({"detail": "Invalid token header. No credentials provided."}),
        ),
        (
            vec![("Authorization", "Token a b")],
            json!({"detail": "Invalid token header. Token string should not contain spaces."}),
        ),
        (
            vec![("Authorization", "Bearer x.y.z")],
            json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is invalid or expired"}]}),
        ),
        (
            vec![("Authorization", "Basic YWRtaW46cHc=")],
            json!({"detail": "Authentication credentials were not provided."}),
        ),
    ] {
        let (status, _, body) = stack.request("GET", "users/", &headers, None).await;
        if status != 403 || body != expected {
            failures.push(format!(
                "GET users/ with {headers:?}: {status} {body}, expected 403 {expected}"
            ));
        }
    }
    // A wrong password starts no session; logging out ends the one we have.
    let (status, _, body) = stack
        .login(&json!({"username": "admin", "password": "wrong"}))
        .await;
    if status != 400 {
        failures.push(format!("login with a wrong password: {status} {body}"));
    }
    let (status, _, _) = stack
        .request("POST", "auth/logout/", &[("Cookie", &cookie)], None)
        .await;
    let (after, _, _) = stack
        .request("GET", "users/", &[("Cookie", &cookie)], None)
        .await;
    if status != 200 || after != 403 {
        failures.push(format!(
            "logout: {status}, then the old cookie got {after} (want 200, 403)"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn writes_by_owner_other_user_and_superuser() {
    let stack = Stack::start_with(&["--queue", "busy"]).await;
    stack.wait_ready().await;
    let owner = format!("Token {}", stack.user("owner", false));
    let other = format!("Token {}", stack.user("other", false));
    let admin = format!("Token {}", stack.token);
    let post = |path: &'static str, body: Value, who: String| {
        let stack = &stack;
        async move {
            let (s, _, b) = stack
                .request(
                    "POST",
                    path,
                    &[("Authorization", &who)],
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await;
            assert_eq!(s, 201, "{path}: {b}");
            b
        }
    };
    let et = post(
        "executabletasktypes/",
        json!({"name": "mine", "command_to_run": "true"}),
        owner.clone(),
    )
    .await;
    let ct = post("containertasktypes/", json!({"name": "minec", "command_to_run": "true", "container_image": "x", "container_type": "docker"}), owner.clone()).await;
    let wl = post(
        "taskwhitelists/",
        json!({"name": "mywl", "whitelisted_executable_task_types": [et["id"]]}),
        owner.clone(),
    )
    .await;
    let q = post(
        "taskqueues/",
        json!({"name": "myq", "whitelists": [wl["id"]]}),
        owner.clone(),
    )
    .await;
    let inst = post(
        "executabletaskinstances/",
        json!({"task_type": et["id"], "task_queue": q["id"]}),
        owner.clone(),
    )
    .await;
    let uuid = inst["uuid"].as_str().expect("uuid").to_owned();

    let writes: Vec<(&str, String, Value)> = vec![
        (
            "PUT",
            format!("executabletasktypes/{}/", et["id"]),
            json!({"name": "mine", "command_to_run": "true", "description": "d"}),
        ),
        (
            "PUT",
            format!("containertasktypes/{}/", ct["id"]),
            json!({"name": "minec", "command_to_run": "true", "container_image": "x", "container_type": "docker"}),
        ),
        (
            "PUT",
            format!("taskwhitelists/{}/", wl["id"]),
            json!({"name": "mywl"}),
        ),
        (
            "PATCH",
            format!("taskwhitelists/{}/", wl["id"]),
            json!({"description": "p"}),
        ),
        (
            "PUT",
            format!("taskqueues/{}/", q["id"]),
            json!({"name": "myq"}),
        ),
        (
            "PATCH",
            format!("taskqueues/{}/", q["id"]),
            json!({"description": "p"}),
        ),
        (
            "PATCH",
            format!("updatetaskinstancestatus/{uuid}/"),
            json!({"state": "published"}),
        ),
        (
            "POST",
            format!("executabletaskinstances/{uuid}/terminate/"),
            json!({}),
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body) in &writes {
        for (who, auth, expected) in [
            ("other", &other, 403u16),
            ("owner", &owner, 0),
            ("admin", &admin, 0),
        ] {
            let (status, _, b) = stack
                .request(
                    method,
                    path,
                    &[("Authorization", auth)],
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await;
            let ok = if expected == 0 {
                (200..300).contains(&status)
            } else {
                status == expected
            };
            if !ok {
                failures.push(format!("{method} {path} by {who}: {status} {b}"));
            }
        }
    }
    // Reads and clone are open to every authenticated user; the clone is the caller's.
    let (status, _, clone) = stack
        .request(
            "POST",
            &format!("executabletaskinstances/{uuid}/clone/"),
            &[("Authorization", &other)],
            None,
        )
        .await;
    if status != 201 || clone["user"] != "other" {
        failures.push(format!("clone by other: {status} {clone}"));
    }
    // Counts of unfiltered lists come from the trigger-kept counters; filtered ones count.
    let (_, all) = stack.get("executabletaskinstances/").await;
    let (_, mine) = stack
        .get("executabletaskinstances/?user__username=owner")
        .await;
    if all["count"] != 2 || mine["count"] != 1 {
        failures.push(format!(
            "counts: all {} (want 2), owner's {} (want 1)",
            all["count"], mine["count"]
        ));
    }
    // Task type PUT keeps the owner (the original moved it to the requester; fixed).
    let (_, t) = stack
        .get(&format!("executabletasktypes/{}/", et["id"]))
        .await;
    if t["user"] != "owner" {
        failures.push(format!("type owner after admin PUT: {t}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn paths_outside_the_router_redirect_to_their_slash_like_django() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let base = stack.url.trim_end_matches("/api");
    let r = stack
        .http
        .get(format!("{base}/api/token?x=1"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 301);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("location"), "/api/token/?x=1");
    // Django's HttpResponsePermanentRedirect.
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
}

/// The document against the running router, both ways: every documented operation is
/// served (not 405, not an unknown path) and every undocumented method of a documented
/// path is a 405; every path of the original's URL table (and the native ones) is
/// documented with exactly the methods it serves.
#[tokio::test]
async fn the_document_and_the_served_routes_agree() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let f = fixture(&stack).await;
    let (status, doc) = stack.get("openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    let doc_paths = doc["paths"].as_object().expect("paths").clone();
    let auth = stack.auth();
    let mut failures = Vec::new();
    for (template, item) in &doc_paths {
        let path = instantiate(template, &f);
        let documented: Vec<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        // A live stream never ends: only its status is read.
        let live = item["get"]["responses"]["200"]["content"]
            .get("text/event-stream")
            .is_some();
        for method in METHODS.iter().filter(|m| **m != "HEAD") {
            let (s, b) = if live && *method == "GET" {
                let (s, body) = stack.sse(&stack.token, &path, &[]).await;
                (s, body.err().map_or(Value::Null, Value::String))
            } else {
                let (s, _, b) = stack
                    .request(
                        method,
                        &path,
                        &[("Authorization", auth.as_str())],
                        Some(("application/json", b"{}".to_vec())),
                    )
                    .await;
                (s, b)
            };
            let served = documented.iter().any(|d| d == method);
            if served
                && (s == 405
                    || (s == 404
                        && b == json!({"detail": "Not found."})
                        && !template.contains("{name}")))
            {
                failures.push(format!("{method} {template}: documented, answers {s} {b}"));
            }
            if !served && s != 405 {
                failures.push(format!("{method} {template}: not documented, answers {s}"));
            }
        }
    }
    let mut spec = paths(&f);
    spec.push((
        format!("taskinstances/{}/results/", f.exec_instance),
        vec!["GET"],
    ));
    spec.push((
        format!("taskinstances/{}/results/x.txt", f.exec_instance),
        vec!["GET"],
    ));
    spec.push((
        format!("taskinstances/{}/logs/", f.exec_instance),
        vec!["GET"],
    ));
    spec.push((
        format!("taskinstances/{}/logs/x.txt", f.exec_instance),
        vec!["GET"],
    ));
    spec.push((
        format!("taskinstances/{}/logs/x.txt/tail/", f.exec_instance),
        vec!["GET"],
    ));
    spec.push(("events/".into(), vec!["GET"]));
    spec.push((format!("taskqueues/{}/events/", f.queue), vec!["GET"]));
    spec.push((
        format!("taskinstances/{}/events/", f.exec_instance),
        vec!["GET"],
    ));
    spec.push(("auth/login/".into(), vec!["GET", "POST"]));
    spec.push(("auth/logout/".into(), vec!["POST"]));
    for (path, allowed) in spec {
        let full = format!("/api/{path}");
        let Some((template, item)) = doc_paths.iter().find(|(t, _)| matches_template(t, &full))
        else {
            failures.push(format!("{full}: not documented"));
            continue;
        };
        let mut documented: Vec<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .map(|m| m.to_uppercase())
            .filter(|m| m != "OPTIONS")
            .collect();
        documented.sort();
        let mut allowed: Vec<String> = allowed
            .iter()
            .filter(|m| **m != "OPTIONS")
            .map(|m| m.to_string())
            .collect();
        allowed.sort();
        if documented != allowed {
            failures.push(format!(
                "{template}: documents {documented:?}, serves {allowed:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A documented path with the fixture's ids in its parameters, relative to `/api/`.
fn instantiate(template: &str, f: &Fixture) -> String {
    let id = [
        ("/api/containertasktypes/", f.ctr_type),
        ("/api/executabletasktypes/", f.exec_type),
        ("/api/taskqueues/", f.queue),
        ("/api/taskwhitelists/", f.whitelist),
    ]
    .iter()
    .find(|(p, _)| template.starts_with(p))
    .map(|(_, id)| id.to_string())
    .unwrap_or_default();
    let uuid = if template.starts_with("/api/containertaskinstances/") {
        &f.ctr_instance
    } else {
        &f.exec_instance
    };
    template
        .trim_start_matches("/api/")
        .replace("{id}", &id)
        .replace("{uuid}", uuid)
        .replace("{username}", "admin")
        .replace("{name}", "nothing.txt")
}

/// Whether `path` is an instance of the document's `template` (`{x}`: one segment, or
/// the rest of the path for the last parameter).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    let last_param = t.last().is_some_and(|s| s.starts_with('{'));
    (t.len() == p.len() || (last_param && p.len() > t.len()))
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}
