//! Hardening (docs/security.md): tasks never reach the server's secrets, whatever they
//! ask for by name or by `$NAME` in their command.

use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn tasks_see_none_of_the_servers_secrets() {
    // A secret-looking variable of the executor's own, beside saltant's settings.
    let stack = saltant_tests::Stack::start_opts(saltant_tests::Options {
        env: &[("MY_API_TOKEN", "t0ps3cret"), ("MY_DATA_DIR", "/data/here")],
        ..Default::default()
    })
    .await;
    stack.wait_ready().await;
    let database_url = stack.database_url();

    // Asked for by name: the attempt fails as the original did for a missing variable.
    for name in ["SALTANT_DATABASE_URL", "SALTANT_NATS_URL", "MY_API_TOKEN"] {
        let (ty, q) = stack
            .type_on_queues(
                saltant_tests::Class::Executable,
                &json!({"name": format!("wants-{name}"), "command_to_run": "true",
                        "environment_variables": [name]}),
                &[format!("q-{}", name.to_lowercase().replace('_', "-"))],
            )
            .await;
        let uuid = stack.run_executable(ty, q[0], json!({})).await;
        stack.wait_state(&uuid, "failed", WAIT).await;
        let reason = saltant_tests::psql(
            &database_url,
            &format!("SELECT reason FROM task_instances WHERE uuid = '{uuid}'"),
        )
        .trim()
        .to_owned();
        assert_eq!(
            reason,
            format!("Environment variable {name} not present in the worker's environment!")
        );
    }

    // By `$NAME` in the command (expanded by saltant, then by a shell inside the task):
    // nothing secret, while harmless variables still work.
    let (ty, q) = stack
        .executable_on_queue(
            "peek",
            "sh -c 'echo \"[$SALTANT_DATABASE_URL] [$MY_API_TOKEN] [$MY_DATA_DIR]\"; echo \"<$SALTANT_NATS_URL>\"; env'",
            "peekq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack.wait_state(&uuid, "successful", WAIT).await;
    let out = stack.output_of(&uuid, "stdout").await;
    assert!(out.starts_with("[] [] [/data/here]\n<>\n"), "{out}");
    for secret in [database_url.as_str(), "t0ps3cret", "SALTANT_", "nats://"] {
        assert!(!out.contains(secret), "the task saw {secret}: {out}");
    }
}

#[tokio::test]
async fn only_superusers_write_executable_types_when_so_configured() {
    let stack = saltant_tests::Stack::start_opts(saltant_tests::Options {
        env: &[("SALTANT_API__EXECUTABLE_TYPES_BY", "superusers")],
        ..Default::default()
    })
    .await;
    stack.wait_ready().await;
    let bob = stack.user("bob", false);
    let post = |token: String, path: &'static str, body: serde_json::Value| {
        let stack = &stack;
        async move {
            let (status, _, body) = stack
                .request(
                    "POST",
                    path,
                    &[("Authorization", &format!("Token {token}"))],
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await;
            (status, body)
        }
    };
    let exe = json!({"name": "x", "command_to_run": "true"});
    let (status, body) = post(bob.clone(), "executabletasktypes/", exe.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["detail"],
        "You do not have permission to perform this action."
    );
    let (status, body) = post(
        bob.clone(),
        "containertasktypes/",
        json!({"name": "c", "command_to_run": "true", "container_image": "busybox", "container_type": "docker"}),
    )
    .await;
    assert_eq!(status, 201, "container types are not host code: {body}");
    let (status, body) = post(stack.token.clone(), "executabletasktypes/", exe).await;
    assert_eq!(status, 201, "{body}");
    // Bob cannot change it either (not his, and host code).
    let (status, _, _) = stack
        .request(
            "PUT",
            &format!("executabletasktypes/{}/", body["id"]),
            &[("Authorization", &format!("Token {bob}"))],
            Some((
                "application/json",
                br#"{"name": "x", "command_to_run": "id"}"#.to_vec(),
            )),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn failed_logins_are_throttled_and_answers_carry_security_headers() {
    let stack = saltant_tests::Stack::start().await;
    stack.wait_ready().await;
    stack.user("carol", false);
    let attempt = |password: &'static str| {
        let stack = &stack;
        async move {
            let body = json!({"username": "carol", "password": password}).to_string();
            stack
                .request(
                    "POST",
                    "token/",
                    &[],
                    Some(("application/json", body.into_bytes())),
                )
                .await
        }
    };
    for i in 0..10 {
        let (status, _, body) = attempt("wrong").await;
        assert_eq!(status, 401, "failure {i}: {body}");
    }
    // The 11th within the minute, even with the right password.
    let (status, h, body) = attempt("pw-of-test-user").await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = h["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Request was throttled. Expected available in")),
        "{body}"
    );
    // The session login shares the count.
    let (status, _, _) = stack
        .login(&json!({"username": "carol", "password": "wrong"}))
        .await;
    assert_eq!(status, 429);

    // Security headers, on answers of every kind.
    for path in ["", "users/", "nope/", "swagger/"] {
        let (_, h, _) = stack
            .request("GET", path, &[("Authorization", &stack.auth())], None)
            .await;
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("content-security-policy", "frame-ancestors 'none'"),
            ("referrer-policy", "same-origin"),
        ] {
            assert_eq!(
                h.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{path} {name}"
            );
        }
    }
    // A foreign Host (links would point there) is refused, as Django's ALLOWED_HOSTS.
    for host in ["evil.example", "evil.example:80", "localhost:@evil.example"] {
        let (status, _, body) = stack
            .request(
                "GET",
                "users/",
                &[("Authorization", &stack.auth()), ("Host", host)],
                None,
            )
            .await;
        assert_eq!(status, 400, "{host}: {body}");
        assert_eq!(body["detail"], format!("Invalid Host header: {host:?}."));
    }
    let (status, _, _) = stack
        .request(
            "GET",
            "users/",
            &[("Authorization", &stack.auth()), ("Host", "localhost")],
            None,
        )
        .await;
    assert_eq!(status, 200);
    // The database's own words stay inside: a bad regular expression is a plain 400.
    let (status, _, body) = stack
        .request(
            "GET",
            "users/?username__regex=(",
            &[("Authorization", &stack.auth())],
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"detail": "Invalid input: invalid regular expression."})
    );
}

#[tokio::test]
async fn a_login_must_echo_its_forms_csrf_cookie() {
    let stack = saltant_tests::Stack::start().await;
    stack.wait_ready().await;
    stack.user("dave", false);
    let form = "username=dave&password=pw-of-test-user";
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let stack = &stack;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, _, body) = stack
                .request(
                    "POST",
                    "auth/login/",
                    &headers,
                    Some(("application/x-www-form-urlencoded", body.into_bytes())),
                )
                .await;
            (
                status,
                body["detail"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    // A cross-site form post carries no cookie of ours.
    assert_eq!(
        post(vec![], form.into()).await,
        (403, "CSRF Failed: CSRF cookie not set.".into())
    );
    // An empty cookie echoed by an empty header is no token at all.
    assert_eq!(
        post(
            vec![
                ("Cookie", "csrftoken=".into()),
                ("X-CSRFToken", String::new())
            ],
            form.into()
        )
        .await,
        (403, "CSRF Failed: CSRF cookie not set.".into())
    );
    let (_, _, page) = stack.request("GET", "auth/login/", &[], None).await;
    let token = page["csrftoken"].as_str().expect("token").to_owned();
    let cookie = ("Cookie", format!("csrftoken={token}"));
    assert_eq!(
        post(vec![cookie.clone()], form.into()).await,
        (403, "CSRF Failed: CSRF token missing.".into())
    );
    assert_eq!(
        post(
            vec![cookie.clone(), ("X-CSRFToken", "0".repeat(32))],
            form.into()
        )
        .await,
        (403, "CSRF Failed: CSRF token incorrect.".into())
    );
    // The form field (a plain HTML form) or the header.
    let (status, _) = post(
        vec![cookie.clone()],
        format!("{form}&csrfmiddlewaretoken={token}"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(vec![cookie, ("X-CSRFToken", token.clone())], form.into()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn host_tasks_of_a_root_executor_run_as_an_unprivileged_user() {
    let stack = saltant_tests::Stack::start().await;
    stack.wait_ready().await;
    let root = nix::unistd::Uid::effective().is_root();
    let expected = if root {
        nix::unistd::User::from_name("nobody")
            .expect("users")
            .expect("nobody")
            .uid
    } else {
        nix::unistd::Uid::effective()
    };
    // Its user, a file in its own folder, and the executor's environment (its parent's).
    let (ty, q) = stack
        .executable_on_queue(
            "who",
            "sh -c 'id -u; touch mine && echo wrote; cat /proc/$PPID/environ || echo refused'",
            "wq",
        )
        .await;
    let uuid = stack.run_executable(ty, q, json!({})).await;
    stack.wait_state(&uuid, "successful", WAIT).await;
    let out = stack.output_of(&uuid, "stdout").await;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(expected.to_string().as_str()), "{out}");
    assert_eq!(lines.next(), Some("wrote"), "{out}");
    if root {
        assert_eq!(lines.next(), Some("refused"), "{out}");
        assert!(!out.contains("SALTANT_"), "{out}");
    }
}

/// Reads from `tcp` until the server closes it (or `limit` passes): whether it closed.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_connections_are_limited() {
    use tokio::io::AsyncWriteExt;
    let stack = saltant_tests::Stack::start_opts(saltant_tests::Options {
        env: &[
            ("SALTANT_API__HEADER_TIMEOUT_SECS", "2"),
            ("SALTANT_API__BODY_TIMEOUT_SECS", "2"),
            ("SALTANT_API__MAX_CONNECTIONS", "4"),
        ],
        ..Default::default()
    })
    .await;
    stack.wait_ready().await;
    let addr = stack
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .to_owned();
    let connect = || tokio::net::TcpStream::connect(addr.clone());
    let bound = Duration::from_secs(20);
    // The test client's pooled connections are closed by the idle time-out first.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Headers that never end.
    let mut slow_head = connect().await.expect("connect");
    slow_head
        .write_all(b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("send");
    // A body that stops after its first byte.
    let mut slow_body = connect().await.expect("connect");
    slow_body
        .write_all(
            b"POST /api/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .expect("send");
    // A keep-alive connection left idle after one request.
    let mut idle = connect().await.expect("connect");
    idle.write_all(b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send");
    // With a fourth, the limit is reached: a fifth is closed at once.
    let mut silent = connect().await.expect("connect");
    let mut fifth = connect().await.expect("connect");
    assert!(
        closed_within(&mut fifth, Duration::from_secs(1)).await,
        "a fifth connection was served"
    );

    for (what, tcp) in [
        ("slow headers", &mut slow_head),
        ("a slow body", &mut slow_body),
        ("an idle keep-alive connection", &mut idle),
        ("a connection that never sent anything", &mut silent),
    ] {
        assert!(
            closed_within(tcp, bound).await,
            "{what} still open after {bound:?}"
        );
    }
    // Their slots are free again.
    let (status, _) = stack.get("").await;
    assert_eq!(status, 200);
}

/// The catastrophic pattern of the probe that held the database for 17.5 s.
const SLOW_REGEX: &str = "(.*.*.*.*.*.*.*.*.*.*){1,100}x";

#[tokio::test]
async fn an_expensive_filter_is_stopped_and_cannot_take_every_connection() {
    let stack = saltant_tests::Stack::start_opts(saltant_tests::Options {
        env: &[
            ("SALTANT_API__STATEMENT_TIMEOUT_SECS", "2"),
            ("SALTANT_API__LISTS_PER_USER", "2"),
            ("SALTANT_DATABASE__MAX_CONNECTIONS", "3"),
            ("SALTANT_DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
        ],
        ..Default::default()
    })
    .await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("t", "true", "eq").await;
    for _ in 0..3 {
        stack.run_executable(ty, q, json!({})).await;
    }
    let bob = stack.user("bob", false);
    let pattern: String = form_urlencoded::byte_serialize(SLOW_REGEX.as_bytes()).collect();
    let path = format!("executabletaskinstances/?user__username__regex={pattern}");
    let get = |token: String, path: String| {
        let stack = &stack;
        async move {
            let (status, _, body) = stack
                .request(
                    "GET",
                    &path,
                    &[("Authorization", &format!("Token {token}"))],
                    None,
                )
                .await;
            (status, body)
        }
    };

    // Six at once from bob: two run at a time, each stopped at the time-out with a 400;
    // meanwhile another user's list is served.
    let slow: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn({
                let (bob, path) = (bob.clone(), path.clone());
                let stack_url = stack.url.clone();
                async move {
                    let r = reqwest::Client::new()
                        .get(format!("{stack_url}/{path}"))
                        .header("Authorization", format!("Token {bob}"))
                        .send()
                        .await
                        .expect("send");
                    let status = r.status().as_u16();
                    (
                        status,
                        r.json::<serde_json::Value>().await.unwrap_or_default(),
                    )
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = get(stack.token.clone(), "executabletaskinstances/".into()).await;
    assert_eq!(status, 200, "another user's list while bob's run: {body}");
    // (The pattern is a bound value: the statement's text shows `u.username ~ $n`.)
    let running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%u.username ~ $%' \
                   AND pid <> pg_backend_pid() AND state = 'active'";
    let now = stack.count(running);
    assert!(
        (1..=2).contains(&now),
        "{now} of bob's lists running at once (2 allowed)"
    );
    for s in slow {
        let (status, body) = s.await.expect("join");
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["detail"],
            "The request took too long in the database and was stopped; narrow its filters."
        );
    }
    // Nothing of them is left running in PostgreSQL.
    saltant_tests::eventually(
        Duration::from_secs(10),
        "the stopped queries to end",
        || async { (stack.count(running) == 0).then_some(()) },
    )
    .await;
    // A longer pattern is refused before it reaches the database.
    let long: String = "a".repeat(201);
    let (status, body) = get(bob, format!("executabletaskinstances/?name__regex={long}")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["name__regex"][0],
        "Ensure this value has at most 200 characters."
    );
}

#[tokio::test]
async fn an_abandoned_list_leaves_no_transaction_behind() {
    let stack = saltant_tests::Stack::start().await;
    stack.wait_ready().await;
    let (ty, q) = stack.executable_on_queue("t", "true", "aq").await;
    for _ in 0..3 {
        stack.run_executable(ty, q, json!({})).await;
    }
    let idle_in_transaction = "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
    for _ in 0..5 {
        // The client reads the status and hangs up on the rows.
        let r = stack
            .http
            .get(format!(
                "{}/executabletaskinstances/?page_size=1000",
                stack.url
            ))
            .header("Authorization", stack.auth())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
        drop(r);
        // What the next requests write is committed and seen at once.
        let uuid = stack.run_executable(ty, q, json!({})).await;
        let (status, body) = stack.get(&format!("executabletaskinstances/{uuid}/")).await;
        assert_eq!(status, 200, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        stack.count(idle_in_transaction),
        0,
        "a transaction was left open"
    );
}
