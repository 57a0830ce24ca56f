//! Bad and unusual input against the real api: every case gets a clear 4xx in the
//! original's error shape (never a 5xx), and nothing is half written.

use saltant_tests::Stack;
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(pairs)
        .expect("form")
        .into_bytes()
}

#[tokio::test]
async fn status_endpoint_validates_and_answers_like_the_original() {
    let stack = Stack::start_with(&["--queue", "busy"]).await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("t", "true", "idle").await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    let auth = stack.auth();
    let h = [("Authorization", auth.as_str())];
    let path = format!("updatetaskinstancestatus/{uuid}/");

    // (body, content type, status, body expected; None: not checked), in order.
    let ok = |state: &str| Some(json!({"uuid": uuid, "state": state}));
    let steps: [(Vec<u8>, &str, u16, Option<Value>); 6] = [
        (form(&[("state", "running")]), FORM, 200, ok("running")),
        // The same state again: idempotent.
        (br#"{"state":"running"}"#.to_vec(), JSON, 200, ok("running")),
        (
            br#"{"state":"bogus"}"#.to_vec(),
            JSON,
            400,
            Some(json!({"state": ["\"bogus\" is not a valid choice."]})),
        ),
        (
            br#"{"state":"published"}"#.to_vec(),
            JSON,
            400,
            Some(json!({"state": ["Cannot change state from \"running\" to \"published\"."]})),
        ),
        (
            b"{}".to_vec(),
            JSON,
            400,
            Some(json!({"state": ["This field is required."]})),
        ),
        (
            form(&[("state", "successful")]),
            FORM,
            200,
            ok("successful"),
        ),
    ];
    for (body, content_type, status, expected) in steps {
        let sent = String::from_utf8_lossy(&body).into_owned();
        let (s, _, b) = stack
            .request("PATCH", &path, &h, Some((content_type, body)))
            .await;
        assert_eq!(s, status, "{sent}: {b}");
        if let Some(expected) = expected {
            assert_eq!(b, expected, "{sent}");
        }
        if s == 200 {
            let (_, i) = stack.get(&format!("executabletaskinstances/{uuid}/")).await;
            assert_eq!(i["state"], b["state"], "{sent}");
        }
    }
    let (_, i) = stack.get(&format!("executabletaskinstances/{uuid}/")).await;
    assert_eq!(i["state"], "successful");
    assert!(i["datetime_finished"].is_string(), "{i}");
    let finished = i["datetime_finished"].clone();
    let (s, _, _) = stack
        .request(
            "PATCH",
            &path,
            &h,
            Some((FORM, form(&[("state", "failed")]))),
        )
        .await;
    assert_eq!(s, 400, "a finished instance stays finished");
    let (_, i) = stack.get(&format!("executabletaskinstances/{uuid}/")).await;
    assert_eq!(
        i["datetime_finished"], finished,
        "datetime_finished is set once"
    );

    let unknown = "00000000-0000-0000-0000-000000000000";
    let (s, _, b) = stack
        .request(
            "PATCH",
            &format!("updatetaskinstancestatus/{unknown}/"),
            &h,
            Some((JSON, br#"{"state":"running"}"#.to_vec())),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            400,
            Value::String(format!("No task instance with UUID {unknown} found"))
        )
    );
    // Outside the router: the slash is required (301 to it).
    let (s, headers, _) = stack
        .request(
            "PATCH",
            &format!("updatetaskinstancestatus/{uuid}"),
            &h,
            None,
        )
        .await;
    assert_eq!(s, 301);
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/updatetaskinstancestatus/{uuid}/").as_str())
    );
    let (s, headers, _) = stack.request("OPTIONS", &path, &h, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("PATCH, OPTIONS")
    );
}

#[tokio::test]
async fn jwt_obtain_refresh_and_their_errors() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    stack.saltant(&["admin", "set-password", "admin", "--password", "s3cret pw"]);
    let (s, h, b) = stack
        .request(
            "POST",
            "token/",
            &[],
            Some((JSON, br#"{"username":"admin","password":"wrong"}"#.to_vec())),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            401,
            json!({"detail": "No active account found with the given credentials"})
        )
    );
    assert_eq!(
        h.get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"api\"")
    );
    let (s, _, b) = stack
        .request(
            "POST",
            "token/",
            &[],
            Some((FORM, form(&[("username", "admin")]))),
        )
        .await;
    assert_eq!(
        (s, b),
        (400, json!({"password": ["This field is required."]}))
    );
    let (s, _, pair) = stack
        .request(
            "POST",
            "token/",
            &[],
            Some((
                FORM,
                form(&[("username", "admin"), ("password", "s3cret pw")]),
            )),
        )
        .await;
    assert_eq!(s, 200, "{pair}");
    let keys: Vec<&String> = pair.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["refresh", "access"]);
    let access = pair["access"].as_str().expect("access").to_owned();
    let refresh = pair["refresh"].as_str().expect("refresh").to_owned();

    let bearer = format!("Bearer {access}");
    let (s, _, me) = stack
        .request("GET", "users/admin/", &[("Authorization", &bearer)], None)
        .await;
    assert_eq!((s, me), (200, json!({"username": "admin", "email": ""})));
    // A refresh token is not an access token, and simplejwt says so.
    let (s, _, b) = stack
        .request(
            "GET",
            "users/",
            &[("Authorization", &format!("Bearer {refresh}"))],
            None,
        )
        .await;
    assert_eq!(
        (s, b),
        (
            403,
            json!({"detail": "Given token not valid for any token type", "code": "token_not_valid",
                   "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token has wrong type"}]})
        )
    );

    let (s, _, b) = stack
        .request(
            "POST",
            "token/refresh/",
            &[],
            Some((JSON, json!({"refresh": refresh}).to_string().into_bytes())),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b.as_object().expect("object").keys().collect::<Vec<_>>(),
        ["access"]
    );
    let (s, _, b) = stack
        .request(
            "POST",
            "token/refresh/",
            &[],
            Some((JSON, json!({"refresh": access}).to_string().into_bytes())),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            401,
            json!({"detail": "Token has wrong type", "code": "token_not_valid"})
        )
    );
    let (s, _, b) = stack
        .request(
            "POST",
            "token/refresh/",
            &[],
            Some((FORM, form(&[("refresh", "garbage")]))),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            401,
            json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
        )
    );
    let (s, h, _) = stack.request("POST", "token", &[], None).await;
    assert_eq!(s, 301);
    assert_eq!(
        h.get("location").and_then(|v| v.to_str().ok()),
        Some("/api/token/")
    );
}

/// Sends only the head of a POST announcing `length` bytes; returns the answer.
async fn head_only(stack: &Stack, auth: &str, length: usize) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = stack
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/executabletasktypes/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: {FORM}\r\nContent-Length: {length}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("the api answers before the body is sent")
            .expect("read");
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..read]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&answer).into_owned();
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let _ = end;
            return (status, Value::String(text));
        }
    }
    (
        0,
        Value::String(String::from_utf8_lossy(&answer).into_owned()),
    )
}

#[derive(Default)]
struct Checks {
    failures: Vec<String>,
    created: usize,
}

impl Checks {
    fn fail(&mut self, message: String) {
        self.failures.push(message);
    }
    fn check(&mut self, what: &str, status: u16, body: &Value, expect: &dyn Fn(u16) -> bool) {
        if !expect(status) || status >= 500 {
            self.failures.push(format!("{what}: {status} {body}"));
        }
        if status == 201 {
            self.created += 1;
        }
    }
}

#[tokio::test]
async fn bad_input_gets_4xx_and_is_never_half_written() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let auth = stack.auth();
    let h = [("Authorization", auth.as_str())];
    let mut c = Checks::default();
    let post = |ct: &'static str, body: Vec<u8>| {
        let stack = &stack;
        async move {
            stack
                .request("POST", "executabletasktypes/", &h, Some((ct, body)))
                .await
        }
    };

    let (s, _, b) = post(JSON, b"{\"name\": ".to_vec()).await;
    c.check("malformed JSON", s, &b, &|s| s == 400);
    if !b["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("JSON parse error - "))
    {
        c.fail(format!("malformed JSON body: {b}"));
    }
    let (s, _, b) = post("text/plain", b"name=x".to_vec()).await;
    c.check("text/plain", s, &b, &|s| s == 415);
    let (s, _, b) = post(JSON, b"[1, 2]".to_vec()).await;
    c.check("a list body", s, &b, &|s| s == 400);
    if b != json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}) {
        c.fail(format!("list body: {b}"));
    }
    let deep = format!(
        "{{\"name\": \"deep\", \"command_to_run\": \"true\", \"required_arguments_default_values\": {}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let (s, _, b) = post(JSON, deep.into_bytes()).await;
    c.check("deeply nested JSON", s, &b, &|s| s == 400);
    // A body over the limit is refused from its Content-Length, before it is sent (a
    // client still writing it may see the connection close; so only the head is sent).
    let (s, b) = head_only(&stack, &auth, 3 * 1024 * 1024).await;
    c.check("3 MiB body", s, &b, &|s| s == 413);
    let (s, _, b) = post("multipart/form-data", b"x".to_vec()).await;
    c.check("multipart without boundary", s, &b, &|s| s == 400);

    // Hostile text in every text field: stored verbatim (never run through a shell) or
    // refused with a field error; never a 5xx.
    let nasty = [
        "it's",
        "say \"hi\"",
        "$(touch /tmp/saltant-pwned)",
        "`id`",
        "a\0b",
        "\u{202e}rtl",
        "ünïcödé ✓",
    ];
    let mega = "x".repeat(1024 * 1024);
    let fields = ["name", "description", "command_to_run", "json_file_option"];
    let mut n = 0;
    for field in fields {
        for (i, text) in nasty.iter().copied().chain([mega.as_str()]).enumerate() {
            n += 1;
            let mut body = json!({"name": format!("n{n}"), "command_to_run": "true"});
            body[field] = Value::String(text.to_owned());
            let (s, _, b) = post(JSON, body.to_string().into_bytes()).await;
            let what = format!("{field} = nasty[{i}] ({} bytes)", text.len());
            c.check(&what, s, &b, &|s| s == 201 || s == 400);
            if s == 201 && b[field] != Value::String(text.to_owned()) && field != "name" {
                c.fail(format!("{what}: stored {}", b[field]));
            }
            let pairs = [
                ("name", format!("f{n}")),
                ("command_to_run", "true".into()),
                (field, text.to_owned()),
            ];
            let encoded = serde_urlencoded::to_string(&pairs)
                .expect("form")
                .into_bytes();
            let (s, _, b) = post(FORM, encoded).await;
            c.check(&format!("form {what}"), s, &b, &|s| s == 201 || s == 400);
        }
    }
    // Arguments that are not objects, and a NUL inside an argument value.
    let (ty, q) = stack.executable_on_queue("argt", "true", "argq").await;
    c.created += 1;
    for (what, args) in [
        ("list", json!([1, 2])),
        ("string", json!("text")),
        ("number", json!(5)),
        ("NUL in a value", json!({"x": "a\u{0000}b"})),
        ("NUL in a key", json!({"a\u{0000}": 1})),
    ] {
        let (s, _, b) = stack
            .request(
                "POST",
                "executabletaskinstances/",
                &h,
                Some((
                    JSON,
                    json!({"task_type": ty, "task_queue": q, "arguments": args})
                        .to_string()
                        .into_bytes(),
                )),
            )
            .await;
        c.check(&format!("arguments {what}"), s, &b, &|s| s == 400);
    }
    // Paths and queries.
    for (path, expected) in [
        ("executabletaskinstances/not-a-uuid/", 404),
        (
            "executabletaskinstances/00000000-0000-0000-0000-000000000000/",
            404,
        ),
        ("executabletasktypes/99999999999999999999999/", 404),
        ("executabletasktypes/-1/", 404),
        ("executabletasktypes/abc/", 404),
        ("users/nobody/", 404),
        ("users/?page=-1", 404),
        ("users/?page=0", 404),
        ("users/?page=abc", 404),
        ("users/?page=99999999999999999999999", 404),
        ("users/?page=2", 404),
        ("users/?page_size=-5", 200),
        ("users/?page_size=abc", 200),
        ("users/?page_size=9223372036854775807", 200),
        ("users/?page_size=99999999999999999999999", 200),
        ("users/?username__regex=(", 400),
        ("users/?username__regex=%5B", 400),
        ("executabletasktypes/?name__regex=a%7B99999%7D", 400),
        ("executabletaskinstances/?datetime_created=2018-12-14", 400),
        ("executabletaskinstances/?datetime_created__year=abc", 400),
        ("executabletaskinstances/?task_type=abc", 400),
        (
            "executabletaskinstances/?task_type=99999999999999999999",
            400,
        ),
        ("executabletaskinstances/?state=bogus", 400),
        ("executabletaskinstances/?name__contains=%00", 400),
        ("nowhere/", 404),
    ] {
        let (s, _, b) = stack.request("GET", path, &h, None).await;
        if s != expected {
            c.fail(format!("GET {path}: {s}, expected {expected}: {b}"));
        }
    }
    // Multipart works like a form.
    let boundary = "XyZ123";
    let mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nmultipart\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"command_to_run\"\r\n\r\necho hi\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"required_arguments\"\r\n\r\n[\"a\"]\r\n--{boundary}--\r\n"
    );
    let (s, _, b) = stack
        .request(
            "POST",
            "executabletasktypes/",
            &h,
            Some((
                &format!("multipart/form-data; boundary={boundary}"),
                mp.into_bytes(),
            )),
        )
        .await;
    c.check("multipart create", s, &b, &|s| s == 201);
    if b["required_arguments"] != json!(["a"]) {
        c.fail(format!("multipart fields: {b}"));
    }
    assert!(
        !std::path::Path::new("/tmp/saltant-pwned").exists(),
        "a shell ran user text"
    );

    // Nothing half written: exactly the accepted types exist.
    let (_, list) = stack.get("executabletasktypes/?page_size=100000").await;
    if list["count"] != json!(c.created) {
        let msg = format!("{} types stored, {} accepted", list["count"], c.created);
        c.fail(msg);
    }
    assert!(
        c.failures.is_empty(),
        "{} failures:\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
}

/// Names are unique per resource: a second create is a field error, also when the
/// creates race (then the database's unique index decides, with the same answer).
#[tokio::test]
async fn duplicate_names_are_field_errors_even_when_racing() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    for (path, body, message) in [
        (
            "executabletasktypes/",
            json!({"name": "dup", "command_to_run": "true"}),
            "executable task type with this name already exists.",
        ),
        (
            "containertasktypes/",
            json!({"name": "dup", "command_to_run": "true", "container_image": "x", "container_type": "docker"}),
            "container task type with this name already exists.",
        ),
        (
            "taskwhitelists/",
            json!({"name": "dup"}),
            "task whitelist with this name already exists.",
        ),
        (
            "taskqueues/",
            json!({"name": "dup"}),
            "task queue with this name already exists.",
        ),
    ] {
        let racing = (0..8).map(|_| stack.post_json(path, &body));
        let answers = futures::future::join_all(racing).await;
        let created = answers.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(created, 1, "{path}: {answers:?}");
        for (status, b) in answers.iter().filter(|(s, _)| *s != 201) {
            assert_eq!((*status, b), (400, &json!({"name": [message]})), "{path}");
        }
        let (status, b) = stack.post_json(path, &body).await;
        assert_eq!((status, b), (400, json!({"name": [message]})), "{path}");
    }
}

/// The original prints a wrong JSON field with Python's `%s` of the parsed value, inside
/// DRF's repr of the list of messages: `'{'a': 1}'`, `'[1, 2]'`, `True`, `None`.
#[tokio::test]
async fn wrong_json_fields_are_quoted_as_python_prints_them() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let model = |message: &str| json!({"non_field_errors": [format!("[\"{message}\"]")]});
    let cases = [
        (
            json!({"environment_variables": {"a": 1}}),
            model("'{'a': 1}' is not a valid JSON array!"),
        ),
        (
            json!({"required_arguments": "[true, null, \"x\"]", "required_arguments_default_values": [1, 2]}),
            model("'[1, 2]' is not a valid JSON dictionary!"),
        ),
        (
            json!({"required_arguments": "{\"k\": 1.5e16}"}),
            model("'{'k': 1.5e+16}' is not a valid JSON array!"),
        ),
    ];
    for (fields, expected) in cases {
        let mut body = json!({"name": "bad", "command_to_run": "true"});
        body.as_object_mut()
            .expect("object")
            .extend(fields.as_object().expect("object").clone());
        let (s, b) = stack.post_json("executabletasktypes/", &body).await;
        assert_eq!((s, &b), (400, &expected), "{body}");
    }
    let (ty, q) = stack.executable_on_queue("t", "true", "q").await;
    let (s, b) = stack
        .post_json(
            "executabletaskinstances/",
            &json!({"task_type": ty, "task_queue": q, "arguments": "[1, {\"b\": false}]"}),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            400,
            model("'[1, {'b': False}]' is not a valid JSON dictionary!")
        )
    );
    let (_, list) = stack.get("executabletasktypes/").await;
    assert_eq!(list["count"], 1, "only the valid type was stored: {list}");
}

/// Filters naming a row that does not exist are django-filter's 400, as malformed ids
/// are (the original's `ModelChoiceFilter`); ids of the other class's types do not exist
/// for this class's list.
#[tokio::test]
async fn filters_naming_missing_rows_are_400() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (ty, queue) = stack
        .executable_on_queue("fk-type", "true", "fk-queue")
        .await;
    // Ids are per class: a second executable type has an id no container type has.
    let (s, other) = stack
        .post_json(
            "executabletasktypes/",
            &json!({"name": "fk-type-2", "command_to_run": "true"}),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let (s, ct) = stack
        .post_json(
            "containertasktypes/",
            &json!({"name": "fk-ctr", "command_to_run": "true",
                    "container_image": "busybox", "container_type": "docker"}),
        )
        .await;
    assert_eq!(s, 201, "{ct}");
    assert_ne!(
        ct["id"], other["id"],
        "the container type took the second id"
    );
    let invalid =
        json!(["Select a valid choice. That choice is not one of the available choices."]);
    for (path, param) in [
        ("executabletaskinstances/?task_type=987654321", "task_type"),
        ("containertaskinstances/?task_type=987654321", "task_type"),
        (
            &*format!("containertaskinstances/?task_type={}", other["id"]),
            "task_type",
        ),
        (
            &*format!("executabletaskinstances/?task_type__in={ty},987654321"),
            "task_type__in",
        ),
        (
            "executabletaskinstances/?task_queue=987654321",
            "task_queue",
        ),
        (
            "containertaskinstances/?task_queue__in=987654321",
            "task_queue__in",
        ),
    ] {
        let (s, b) = stack.get(path).await;
        assert_eq!((s, &b), (400, &json!({ param: invalid })), "{path}");
    }
    for path in [
        format!("executabletaskinstances/?task_type={ty}&task_queue={queue}"),
        format!("executabletaskinstances/?task_type__in={ty}"),
        format!("containertaskinstances/?task_type={}", ct["id"]),
    ] {
        let (s, b) = stack.get(&path).await;
        assert_eq!((s, &b["count"]), (200, &json!(0)), "{path}: {b}");
    }
}

/// DRF's format suffix on the router's paths (spec §2.1): the same answer as without it;
/// paths outside the router do not take it.
#[tokio::test]
async fn the_json_format_suffix_serves_router_paths() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let (ty, _) = stack
        .executable_on_queue("suffix-type", "true", "suffix-queue")
        .await;
    for (suffixed, plain) in [
        ("users.json", "users/"),
        ("users.json/", "users/"),
        ("users/admin.json", "users/admin/"),
        ("users/.json", "users/"),
        ("users/admin/.json", "users/admin/"),
        ("executabletasktypes.json", "executabletasktypes/"),
        (
            &*format!("executabletasktypes/{ty}.json"),
            &*format!("executabletasktypes/{ty}/"),
        ),
        (
            "taskqueues.json?name=suffix-queue",
            "taskqueues/?name=suffix-queue",
        ),
    ] {
        let (s, b) = stack.get(suffixed).await;
        let (_, expected) = stack.get(plain).await;
        assert_eq!((s, &b), (200, &expected), "{suffixed}");
    }
    let (s, list) = stack.get("users.json").await;
    assert_eq!(s, 200);
    assert!(list["count"].as_i64().is_some_and(|n| n >= 1), "{list}");
    // The root links with the request's format, as DRF's root view reverses them.
    let (s, root) = stack.get(".json").await;
    assert_eq!(s, 200);
    assert!(
        root["users"]
            .as_str()
            .is_some_and(|u| u.ends_with("/api/users.json")),
        "{root}"
    );
    // Page links keep the suffix.
    let (_, page) = stack.get("executabletasktypes.json?page_size=1").await;
    let (_, more) = stack
        .post_json(
            "executabletasktypes/",
            &json!({"name": "suffix-type-2", "command_to_run": "true"}),
        )
        .await;
    assert!(more["id"].is_i64(), "{more}");
    let (_, page2) = stack.get("executabletasktypes.json?page_size=1").await;
    assert!(
        page2["next"]
            .as_str()
            .is_some_and(|n| n.contains("/api/executabletasktypes.json?page=2")),
        "{page} {page2}"
    );
    // A user whose name holds a `.`: the original's lookup cannot reach it.
    stack.user("ad.min", false);
    for path in [
        "token.json",
        "users.xml",
        "users/ad.min.json",
        "users/ad.min/",
        "taskinstances/x/results.json",
    ] {
        let (s, b) = stack.get(path).await;
        assert_eq!(s, 404, "{path}: {b}");
    }
}
