//! The web UI in headless Chromium against the real stack: a user signs in, creates a
//! task type, a whitelist, a queue and instances through the forms, watches one succeed
//! with its output appearing live, sees the fleet, and terminates long ones. Stored XSS
//! attempts render inert (in the browser and in the raw HTML); forms without the session's
//! CSRF token are refused. Screenshots: target/ui-screenshots/<test>/.

use saltant_tests::browser::Browser;
use saltant_tests::{Stack, eventually, hidden_field};
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "pw-of-test-user";

/// The id at the end of a detail page's URL (`/types/executable/7/`).
async fn id_in_url(b: &Browser) -> String {
    let url = b.client.current_url().await.expect("current url");
    url.path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .expect("a last segment")
        .to_owned()
}

async fn sign_in(b: &Browser, user: &str) {
    b.goto("/").await;
    // Not signed in: the sign-in page, which goes back to the dashboard after.
    expect_h1(b, "Sign in").await;
    b.fill("#username", user).await;
    b.fill("#password", PASSWORD).await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(b, "Dashboard").await;
}

/// The page's heading is `expected` (else the failure shows the page).
async fn expect_h1(b: &Browser, expected: &str) {
    let h1 = b.h1().await;
    if h1 != expected {
        let main = b.text("main").await;
        panic!("expected the page {expected:?}, got {h1:?}:\n{main}");
    }
}

/// The browser's page was not reloaded since [`mark_page`] (live updates only).
async fn same_page(b: &Browser) -> bool {
    b.js("return window.__samePage === 1").await == json!(true)
}

async fn mark_page(b: &Browser) {
    b.js("window.__samePage = 1; return null").await;
}

#[tokio::test]
async fn a_user_runs_watches_and_terminates_instances_in_the_browser() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    stack.user("alice", false);
    let b = Browser::start("run_watch_terminate", &stack.root()).await;

    sign_in(&b, "alice").await;
    b.screenshot("signed-in").await;

    // A task type, through the form; a bad JSON field is refused field by field first.
    b.goto("/types/executable/new/").await;
    b.fill("#name", "ui-echo").await;
    b.fill(
        "#command_to_run",
        "sh -c 'echo first-line; sleep 4; echo \"second-line $0\"'",
    )
    .await;
    b.fill("#required_arguments", "[\"greeting\"").await;
    b.navigate("form.card button[type=submit]").await;
    let error = b.text("#required_arguments-errors").await;
    assert!(error.contains("valid JSON"), "{error}");
    assert_eq!(
        b.find("#name").await.prop("value").await.expect("value"),
        Some("ui-echo".into()),
        "the form keeps what was typed"
    );
    b.screenshot("type-form-error").await;
    b.fill("#required_arguments", "[\"greeting\"]").await;
    b.fill(
        "#required_arguments_default_values",
        "{\"greeting\": \"hi\"}",
    )
    .await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(&b, "ui-echo").await;
    let echo_id = id_in_url(&b).await;
    let preview = b.text("#base-command").await;
    assert!(preview.contains(r#"'{"greeting": "hi"}'"#), "{preview}");
    b.screenshot("type-created").await;

    // A second, long-running type.
    b.goto("/types/executable/new/").await;
    b.fill("#name", "ui-sleeper").await;
    b.fill("#command_to_run", "sh -c 'echo sleeping; sleep 300'")
        .await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(&b, "ui-sleeper").await;
    let sleeper_id = id_in_url(&b).await;

    // A whitelist of both, and a queue using it.
    b.goto("/whitelists/new/").await;
    b.fill("#name", "ui-wl").await;
    b.js("document.querySelectorAll('#whitelisted_executable_task_types option').forEach(o => o.selected = true); return null").await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(&b, "Whitelist ui-wl").await;
    let wl_id = id_in_url(&b).await;
    let listed = b.text("main").await;
    assert!(
        listed.contains("ui-echo") && listed.contains("ui-sleeper"),
        "{listed}"
    );
    b.screenshot("whitelist-created").await;

    b.goto("/queues/new/").await;
    b.fill("#name", "ui-queue").await;
    b.click(&format!("#whitelists option[value='{wl_id}']"))
        .await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(&b, "Queue ui-queue").await;
    let queue_id = id_in_url(&b).await;
    assert!(b.text("main").await.contains("ui-wl"));
    b.screenshot("queue-created").await;

    // An instance from the type's page: the form starts from the type's defaults.
    b.goto(&format!("/types/executable/{echo_id}/")).await;
    b.navigate("a[href$='/run/']").await;
    let args = b
        .find("#arguments")
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert!(args.contains("\"greeting\": \"hi\""), "{args}");
    b.fill("#name", "first run").await;
    b.click(&format!("#task_queue option[value='{queue_id}']"))
        .await;
    b.screenshot("instance-form").await;
    b.navigate("form.card button[type=submit]").await;
    assert!(b.h1().await.starts_with("first run"));
    mark_page(&b).await;

    // Its output shows while it runs, then it succeeds: all without a reload.
    b.wait_text("#log-stdout", "first-line").await;
    b.wait_text("#state", "running").await;
    let log = b.text("#log-stdout").await;
    assert!(
        !log.contains("second-line"),
        "the first line shows while the instance runs, before its last: {log}"
    );
    b.screenshot("instance-running").await;
    b.wait_text("#state", "successful").await;
    let log = b
        .wait_text("#log-stdout", r#"second-line {"greeting": "hi"}"#)
        .await;
    assert_eq!(log.matches("first-line").count(), 1, "{log}");
    b.wait_text("#log-stdout-status", "Complete").await;
    let timeline = b.text("ol.timeline").await;
    for s in ["published", "running", "successful"] {
        assert!(timeline.contains(s), "timeline has {s}: {timeline}");
    }
    assert!(same_page(&b).await, "the page updated itself");
    let facts = b.text("dl.facts").await;
    assert!(facts.contains("ui-echo"), "the type by name: {facts}");
    b.screenshot("instance-successful").await;

    // A long one: the fleet shows the executor running it, and updates live when it is
    // terminated.
    let sleeper = run_from_form(&b, &sleeper_id, &queue_id).await;
    b.wait_text("#log-stdout", "sleeping").await;
    b.wait_text("#state", "running").await;
    b.goto("/fleet/").await;
    let executors = b.wait_text("#executors", &sleeper).await;
    assert!(executors.contains("1 /"), "one slot used: {executors}");
    assert!(executors.contains("executable"), "{executors}");
    let depth = b.text("#queue-depth").await;
    assert!(depth.contains("ui-queue"), "{depth}");
    b.screenshot("fleet-running").await;
    // The same from the API.
    let (status, fleet) = stack.get("executors/").await;
    assert_eq!(status, 200, "{fleet}");
    let running = &fleet["executors"][0]["running"];
    assert!(
        running
            .as_array()
            .is_some_and(|r| r.contains(&json!(sleeper))),
        "{fleet}"
    );
    let slots = fleet["executors"][0]["slots"].as_u64().expect("slots");
    assert_eq!(
        fleet["executors"][0]["slots_free"],
        json!(slots - 1),
        "{fleet}"
    );
    let queue = fleet["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["queue"] == "ui-queue"))
        .unwrap_or_else(|| panic!("ui-queue in {fleet}"));
    assert_eq!(queue["running"], 1, "{fleet}");
    assert!(
        fleet["executors"][0]["capabilities"]
            .to_string()
            .contains("executable")
    );
    mark_page(&b).await;
    let (status, _, body) = stack
        .request(
            "POST",
            &format!("executabletaskinstances/{sleeper}/terminate/"),
            &[("Authorization", &stack.auth())],
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let what = "the fleet page to drop the terminated instance";
    eventually(Duration::from_secs(60), what, || async {
        let t = b.text_now("#fleet").await?;
        (!t.contains(&sleeper)).then_some(())
    })
    .await;
    assert!(same_page(&b).await, "the fleet updated itself");
    b.screenshot("fleet-after-terminate").await;

    // Another long one, terminated with the page's button.
    let second = run_from_form(&b, &sleeper_id, &queue_id).await;
    b.wait_text("#state", "running").await;
    b.screenshot("second-running").await;
    b.navigate("#terminate").await;
    b.wait_text("#state", "terminated").await;
    let url = b.client.current_url().await.expect("url");
    assert!(url.path().contains(&second), "{url}");
    b.screenshot("second-terminated").await;

    // The lists show them with their states.
    b.goto("/instances/executable/?state=terminated").await;
    let list = b.text("#instance-list").await;
    assert!(list.contains("terminated"), "{list}");
    assert!(!list.contains("first run"), "filtered by state: {list}");
    b.goto("/").await;
    let dash = b.text("#dashboard").await;
    assert!(
        dash.contains("terminated") && dash.contains("successful"),
        "{dash}"
    );
    b.screenshot("dashboard").await;
    b.close().await;
}

/// Creates an instance of type `ty` on queue `q` through the form; its uuid.
async fn run_from_form(b: &Browser, ty: &str, q: &str) -> String {
    b.goto(&format!("/types/executable/{ty}/run/")).await;
    b.click(&format!("#task_queue option[value='{q}']")).await;
    b.navigate("form.card button[type=submit]").await;
    b.text("#uuid").await
}

async fn get_page(
    stack: &Stack,
    cookie: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = stack
        .http
        .get(format!("{}{path}", stack.root()))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("get page");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.expect("page text"))
}

const PAYLOAD: &str = r#"<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">"#;
const JS_LINK: &str = r#"<a href="javascript:window.__xss=3">link</a>"#;

/// Whether any script of `PAYLOAD` ran or became markup.
async fn inert(b: &Browser, page: &str) {
    let got = b
        .js(r#"return [typeof window.__xss,
            document.querySelectorAll('img[onerror], img[src=x]').length,
            document.querySelectorAll('a[href^="javascript:"]').length,
            Array.from(document.scripts).filter(s => !s.src).length]"#)
        .await;
    assert_eq!(got, json!(["undefined", 0, 0, 0]), "on {page}");
}

#[tokio::test]
async fn stored_xss_renders_inert_and_forms_need_the_csrf_token() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let token = stack.user("eve", false);
    let eve = format!("Token {token}");
    let post = |path: String, body: Value| {
        let eve = eve.clone();
        let stack = &stack;
        async move {
            let (status, _, v) = stack
                .request(
                    "POST",
                    &path,
                    &[("Authorization", &eve)],
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await;
            assert_eq!(status, 201, "{path}: {v}");
            v
        }
    };
    // Names, descriptions, arguments and output carry script.
    let ty = post(
        "executabletasktypes/".into(),
        json!({
            "name": format!("t{PAYLOAD}"),
            "description": format!("{JS_LINK}{PAYLOAD}"),
            "command_to_run": "sh -c 'echo \"<script>window.__xss=4</script><img src=x onerror=window.__xss=5>\"; echo \"$0\"'",
            "required_arguments": ["a"],
        }),
    )
    .await;
    let wl = post(
        "taskwhitelists/".into(),
        json!({"name": "w<img src=x onerror=window.__xss=6>", "description": PAYLOAD,
               "whitelisted_executable_task_types": [ty["id"]]}),
    )
    .await;
    let q = post(
        "taskqueues/".into(),
        json!({"name": "xss-queue", "description": format!("{JS_LINK}{PAYLOAD}"), "whitelists": [wl["id"]]}),
    )
    .await;
    let i = post(
        "executabletaskinstances/".into(),
        json!({"name": PAYLOAD, "task_type": ty["id"], "task_queue": q["id"],
               "arguments": {"a": PAYLOAD}}),
    )
    .await;
    let uuid = i["uuid"].as_str().expect("uuid").to_owned();
    let ty_page = format!("/types/executable/{}/", ty["id"]);
    let instance_page = format!("/instances/executable/{uuid}/");

    // In the browser: no script ran, no element was made, the text is shown as text.
    let b = Browser::start("stored_xss", &stack.root()).await;
    sign_in(&b, "eve").await;
    b.goto(&instance_page).await;
    let log = b.wait_text("#log-stdout", "window.__xss=5>").await;
    assert!(log.contains("<script>window.__xss=4</script>"), "{log}");
    b.wait_text("#state", "successful").await;
    assert!(b.h1().await.contains("<script>window.__xss=1</script>"));
    let args = b.text("#arguments").await;
    assert!(args.contains("onerror"), "{args}");
    inert(&b, &instance_page).await;
    b.screenshot("instance").await;
    let pages = [
        "/".to_owned(),
        "/types/executable/".to_owned(),
        ty_page.clone(),
        format!("{ty_page}run/"),
        "/instances/executable/".to_owned(),
        "/queues/".to_owned(),
        format!("/queues/{}/", q["id"]),
        "/whitelists/".to_owned(),
        format!("/whitelists/{}/", wl["id"]),
        format!("/whitelists/{}/edit/", wl["id"]),
        "/fleet/".to_owned(),
    ];
    for p in &pages {
        b.goto(p).await;
        b.find("h1").await;
        inert(&b, p).await;
    }
    b.goto(&ty_page).await;
    b.screenshot("type").await;
    b.close().await;

    // The raw HTML escapes them.
    let (cookie, set) = stack.ui_sign_in("eve", PASSWORD).await;
    let session = set
        .iter()
        .find(|c| c.starts_with("sessionid="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    for p in [
        &ty_page,
        &instance_page,
        &"/instances/executable/".to_owned(),
    ] {
        let (status, headers, html) = get_page(&stack, &cookie, p).await;
        assert_eq!(status, 200, "{p}");
        assert!(!html.contains("<script>window.__xss"), "{p}: {html}");
        assert!(!html.contains("<img src=x"), "{p}");
        assert!(!html.contains("href=\"javascript:"), "{p}");
        assert!(
            html.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
            "{p}"
        );
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    // A page nothing serves: the UI's page outside /api/, the original's body inside.
    let (status, headers, html) = get_page(&stack, &cookie, "/no-such-page/").await;
    assert_eq!(status, 404);
    assert!(html.contains("<h1>Not found</h1>"), "{html}");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("script-src 'self'")
    );
    let (status, _, body) = get_page(&stack, &cookie, "/api/no-such-thing/").await;
    assert_eq!((status, body.as_str()), (404, r#"{"detail":"Not found."}"#));

    // Forms: refused without the session's token or with another, taken with it.
    let queues = || stack.count("SELECT count(*) FROM task_queues");
    let before = queues();
    let base = stack.root();
    for fields in [
        vec![("name", "csrf-less")],
        vec![("name", "csrf-wrong"), ("csrf", "0123456789abcdef")],
    ] {
        let r = stack
            .http
            .post(format!("{base}/queues/new/"))
            .header("Cookie", &cookie)
            .form(&fields)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 403, "{fields:?}");
    }
    assert_eq!(queues(), before, "nothing was created");
    let (_, _, account) = get_page(&stack, &cookie, "/account/").await;
    let csrf = hidden_field(&account, "csrf");
    let r = stack
        .http
        .post(format!("{base}/queues/new/"))
        .header("Cookie", &cookie)
        .form(&[
            ("name", "csrf-ok"),
            ("csrf", csrf.as_str()),
            ("active", "true"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    assert_eq!(queues(), before + 1);
    // Signed out, pages send to the sign-in page.
    let r = stack
        .http
        .get(format!("{base}/instances/executable/?state=failed"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login/?next=%2Finstances%2Fexecutable%2F%3Fstate%3Dfailed"
    );
}

/// Presses a key in the page (WebDriver actions: what a keyboard user does).
async fn press(b: &Browser, key: fantoccini::key::Key) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let c: char = key.into();
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: c })
        .then(KeyAction::Up { value: c });
    b.client.perform_actions(keys).await.expect("press a key");
}

/// Tabs until the element with `id` has the focus (at most `tabs` presses).
async fn tab_to(b: &Browser, id: &str, tabs: usize) {
    for _ in 0..tabs {
        press(b, fantoccini::key::Key::Tab).await;
        if b.js("return document.activeElement.id").await == json!(id) {
            return;
        }
    }
    panic!("#{id} not reached with {tabs} tabs");
}

#[tokio::test]
async fn owners_manage_their_objects_by_keyboard_at_phone_width() {
    let stack = Stack::start().await;
    stack.wait_ready().await;
    let bob_token = stack.user("bob", false);
    stack.user("carol", false);
    let b = Browser::start("owners_keyboard_phone", &stack.root()).await;

    // Sign in with the keyboard only: the first Tab reaches the skip link.
    b.goto("/login/").await;
    press(&b, fantoccini::key::Key::Tab).await;
    let first = b.js("return document.activeElement.textContent").await;
    assert_eq!(first, json!("Skip to content"));
    tab_to(&b, "username", 5).await;
    b.client
        .active_element()
        .await
        .expect("focus")
        .send_keys("bob")
        .await
        .expect("type");
    tab_to(&b, "password", 2).await;
    b.client
        .active_element()
        .await
        .expect("focus")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    b.js("window.__leaving = 1; return null").await;
    press(&b, fantoccini::key::Key::Enter).await;
    b.wait_text("h1", "Dashboard").await;

    // The account page: a token made, used, revoked; the password changed.
    b.goto("/account/").await;
    b.navigate("form[action='/account/token/'] button").await;
    let token = b.text("#new-token").await;
    assert_eq!(token.len(), 40, "{token}");
    assert_ne!(token, bob_token, "a new token replaces the old one");
    let api = |t: String| {
        let stack = &stack;
        async move {
            let h = format!("Token {t}");
            stack
                .request("GET", "users/", &[("Authorization", &h)], None)
                .await
                .0
        }
    };
    assert_eq!(api(token.clone()).await, 200);
    assert_eq!(api(bob_token.clone()).await, 403, "the old token is gone");
    b.navigate("form[action='/account/token/revoke/'] button")
        .await;
    b.wait_text(".notice", "Token revoked.").await;
    assert_eq!(api(token).await, 403);
    b.fill("#old_password", "wrong").await;
    b.fill("#new_password", "a-new-pass-1").await;
    b.fill("#new_password2", "a-new-pass-1").await;
    b.navigate("form[action='/account/password/'] button").await;
    b.wait_text("#old_password-errors", "not right").await;
    b.fill("#old_password", PASSWORD).await;
    b.fill("#new_password", "a-new-pass-1").await;
    b.fill("#new_password2", "a-new-pass-1").await;
    b.navigate("form[action='/account/password/'] button").await;
    b.wait_text(".notice", "Password changed.").await;
    let (status, _, _) = stack
        .request(
            "POST",
            "token/",
            &[],
            Some((
                "application/json",
                json!({"username": "bob", "password": "a-new-pass-1"})
                    .to_string()
                    .into_bytes(),
            )),
        )
        .await;
    assert_eq!(status, 200, "the new password works");
    b.screenshot("account").await;

    // A type, updated and deleted by its owner; another user may not.
    b.goto("/types/executable/new/").await;
    b.fill("#name", "bob-type").await;
    b.fill("#command_to_run", "true").await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(&b, "bob-type").await;
    let type_id = id_in_url(&b).await;
    b.navigate("a[href$='/edit/']").await;
    b.fill("#description", "changed by bob").await;
    b.navigate("form.card button[type=submit]").await;
    b.wait_text("p.description", "changed by bob").await;
    let (cookie, _) = stack.ui_sign_in("carol", PASSWORD).await;
    for page in ["edit/", "delete/"] {
        let (status, _, _) = get_page(
            &stack,
            &cookie,
            &format!("/types/executable/{type_id}/{page}"),
        )
        .await;
        assert_eq!(status, 403, "carol may not open {page}");
    }
    let (_, _, account) = get_page(&stack, &cookie, "/account/").await;
    let carol_csrf = hidden_field(&account, "csrf");
    let r = stack
        .http
        .post(format!(
            "{}/types/executable/{type_id}/delete/",
            stack.root()
        ))
        .header("Cookie", &cookie)
        .form(&[("csrf", carol_csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "carol may not delete bob's type");
    let (_, _, detail) = get_page(&stack, &cookie, &format!("/types/executable/{type_id}/")).await;
    assert!(!detail.contains("/delete/"), "no Delete button for carol");

    // A queue and a whitelist, updated by their owner.
    b.goto("/whitelists/new/").await;
    b.fill("#name", "bob-wl").await;
    b.click(&format!(
        "#whitelisted_executable_task_types option[value='{type_id}']"
    ))
    .await;
    b.navigate("form.card button[type=submit]").await;
    let wl_id = id_in_url(&b).await;
    b.goto("/queues/new/").await;
    b.fill("#name", "bob-queue").await;
    b.click(&format!("#whitelists option[value='{wl_id}']"))
        .await;
    b.navigate("form.card button[type=submit]").await;
    let queue_id = id_in_url(&b).await;
    b.navigate("a[href$='/edit/']").await;
    b.fill("#description", "bob's queue").await;
    b.click("#private").await;
    b.navigate("form.card button[type=submit]").await;
    b.wait_text("p.description", "bob's queue").await;
    let facts = b.text("dl.facts").await;
    assert!(
        facts.contains("Private\nyes") || facts.contains("Private yes"),
        "{facts}"
    );
    b.goto(&format!("/whitelists/{wl_id}/edit/")).await;
    b.fill("#name", "bob-wl-2").await;
    b.navigate("form.card button[type=submit]").await;
    expect_h1(&b, "Whitelist bob-wl-2").await;

    // An instance renamed and cloned.
    let uuid = run_from_form(&b, &type_id, &queue_id).await;
    b.wait_text("#state", "successful").await;
    b.fill("#name", "renamed <b>bold</b>").await;
    b.navigate("form[action$='/rename/'] button").await;
    b.wait_text("h1", "renamed <b>bold</b>").await;
    b.navigate("form[action$='/clone/'] button").await;
    let clone = b.text("#uuid").await;
    assert_ne!(clone, uuid, "the clone is a new instance");
    assert!(b.h1().await.starts_with("renamed <b>bold</b>"));
    b.wait_text("#state", "successful").await;

    // The list filtered by user: bob's two instances; none of a user without any, nor of
    // a user that does not exist.
    b.goto("/instances/executable/?user__username=bob").await;
    let list = b.text("#instance-list").await;
    assert_eq!(list.matches("renamed <b>bold</b>").count(), 2, "{list}");
    for other in ["carol", "nobody"] {
        b.goto(&format!("/instances/executable/?user__username={other}"))
            .await;
        b.wait_text("#instance-list", "No instances.").await;
    }

    // Phone width: nothing wider than the screen; the pages still work.
    b.client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    let pages = [
        "/".to_owned(),
        "/types/executable/".to_owned(),
        "/types/container/".to_owned(),
        "/types/container/new/".to_owned(),
        format!("/types/executable/{type_id}/"),
        format!("/types/executable/{type_id}/run/"),
        "/instances/executable/".to_owned(),
        "/instances/container/".to_owned(),
        format!("/instances/executable/{uuid}/"),
        "/queues/".to_owned(),
        format!("/queues/{queue_id}/"),
        "/whitelists/".to_owned(),
        "/fleet/".to_owned(),
        "/account/".to_owned(),
    ];
    for (n, p) in pages.iter().enumerate() {
        b.goto(p).await;
        b.find("h1").await;
        let fits = b
            .js("return document.documentElement.scrollWidth <= window.innerWidth + 1")
            .await;
        assert_eq!(fits, json!(true), "{p} is wider than a phone");
        if n == 0 || p.contains(&uuid) {
            b.screenshot(&format!("phone-{n}")).await;
        }
    }
    b.close().await;
}
