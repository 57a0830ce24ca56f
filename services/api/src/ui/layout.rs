//! The pages' frame (navigation, sign-out form, the script and style sheet) and the small
//! pieces every page uses: state badges, times, form fields with their errors.

use super::form::Errors;
use super::{CSRF_FIELD, Viewer};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use saltant_core::State;

/// How a page keeps itself current (app.js): regions marked `data-live` are fetched again
/// when an event arrives on `events` (an API event stream), and every `poll_ms`.
#[derive(Default)]
pub(crate) struct Live {
    pub events: Option<String>,
    pub poll_ms: Option<u32>,
}

pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    live_page(title, viewer, Live::default(), body)
}

pub(crate) fn live_page(title: &str, viewer: Option<&Viewer>, live: Live, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · saltant" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body data-events=[live.events.as_deref()] data-poll=[live.poll_ms] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "saltant" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Dashboard" } }
                                li { a href="/types/executable/" { "Executable types" } }
                                li { a href="/types/container/" { "Container types" } }
                                li { a href="/instances/executable/" { "Executable instances" } }
                                li { a href="/instances/container/" { "Container instances" } }
                                li { a href="/queues/" { "Queues" } }
                                li { a href="/whitelists/" { "Whitelists" } }
                                li { a href="/fleet/" { "Fleet" } }
                                li { a href="/api/" { "API" } }
                                li { a href="/account/" { "Account (" (v.user().username) ")" } }
                                li {
                                    form.inline method="post" action="/logout/" {
                                        (csrf(v))
                                        button.link type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// The hidden field every form carries.
pub(crate) fn csrf(v: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(v.csrf); }
}

/// A state, by its text and a symbol as well as its colour.
pub(crate) fn state_badge(state: State) -> Markup {
    let symbol = match state {
        State::Created => "○",
        State::Published => "◔",
        State::Running => "▶",
        State::Successful => "✓",
        State::Failed => "✗",
        State::Terminated => "■",
    };
    html! {
        span class={ "state state-" (state.as_str()) } {
            span aria-hidden="true" { (symbol) " " } (state.as_str())
        }
    }
}

pub(crate) fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

pub(crate) fn maybe_time(t: Option<DateTime<Utc>>, none: &str) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { (none) },
    }
}

/// The form's own errors and those of fields it does not show.
pub(crate) fn form_errors(errors: &Errors, shown: &[&str]) -> Markup {
    let mut all = errors.messages("non_field_errors");
    all.extend(errors.others(shown));
    html! {
        @if !all.is_empty() {
            div.errors role="alert" {
                p { "The form has errors:" }
                ul { @for m in &all { li { (m) } } }
            }
        }
    }
}

fn field_errors(errors: &Errors, name: &str) -> Markup {
    let messages = errors.messages(name);
    html! {
        @if !messages.is_empty() {
            ul.field-errors id={ (name) "-errors" } {
                @for m in &messages { li { (m) } }
            }
        }
    }
}

/// A labelled input (`kind`: text, password, number, date…) with its errors.
pub(crate) fn input(label: &str, name: &str, kind: &str, value: &str, errors: &Errors) -> Markup {
    let invalid = !errors.messages(name).is_empty();
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value)
                aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then(|| format!("{name}-errors"))];
            (field_errors(errors, name))
        }
    }
}

/// A labelled text area with its errors.
pub(crate) fn textarea(label: &str, name: &str, value: &str, rows: u32, errors: &Errors) -> Markup {
    let invalid = !errors.messages(name).is_empty();
    html! {
        div.field {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows=(rows)
                aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then(|| format!("{name}-errors"))] { (value) }
            (field_errors(errors, name))
        }
    }
}

/// A labelled checkbox (value `true`; unchecked sends nothing, which the API reads as false).
pub(crate) fn checkbox(label: &str, name: &str, checked: bool, errors: &Errors) -> Markup {
    html! {
        div.field.check {
            input id=(name) name=(name) type="checkbox" value="true" checked[checked];
            label for=(name) { (label) }
            (field_errors(errors, name))
        }
    }
}

/// A labelled select of `(value, text)` options; `multiple` sends each chosen value.
pub(crate) fn select(
    label: &str,
    name: &str,
    options: &[(String, String)],
    chosen: &[String],
    multiple: bool,
    errors: &Errors,
) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) multiple[multiple] {
                @if !multiple { option value="" { "—" } }
                @for (value, text) in options {
                    option value=(value) selected[chosen.contains(value)] { (text) }
                }
            }
            (field_errors(errors, name))
        }
    }
}

/// Previous and next links of a list page (`page` starts at 1).
pub(crate) fn pager(base_query: &[(String, String)], page: i64, more: bool) -> Markup {
    let link = |p: i64| {
        let mut q: Vec<(String, String)> = base_query
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        q.push(("page".into(), p.to_string()));
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        format!("?{q}")
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Newer" } }
            " Page " (page) " "
            @if more { a rel="next" href=(link(page + 1)) { "Older →" } }
        }
    }
}

/// A path segment (or several, `/` kept) percent-encoded for a link.
pub(crate) fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_escapes_what_users_write() {
        let e = Errors::default();
        let html = input(
            "Name",
            "name",
            "text",
            "\"><img src=x onerror=alert(1)><script>x</script>",
            &e,
        )
        .into_string();
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;img"), "{html}");
    }

    #[test]
    fn link_paths_are_percent_encoded() {
        assert_eq!(path_escape("a b/c\"<.txt"), "a%20b/c%22%3C.txt");
        assert_eq!(path_escape("javascript:x"), "javascript%3Ax");
    }
}
