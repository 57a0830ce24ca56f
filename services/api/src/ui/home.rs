//! The dashboard: instances running now, instances per day by state (a server-drawn SVG
//! chart: no script, nothing inline the CSP would refuse) and the latest failures.

use super::instances::{TypeNames, instance_table, latest};
use super::layout::{Live, live_page};
use super::{UiResult, Viewer};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use chrono::{Duration, NaiveDate, Utc};
use maud::{Markup, html};
use saltant_core::State as InstanceState;
use saltant_store::instances::DayStateCount;

#[derive(serde::Deserialize)]
pub(crate) struct Days {
    days: Option<i64>,
}

pub(crate) async fn dashboard(
    State(s): State<AppState>,
    v: Viewer,
    Query(q): Query<Days>,
) -> UiResult {
    // Up to 30 days: the chart reads every instance created in its range (docs/ui.md).
    let days = q.days.unwrap_or(7).clamp(1, 30);
    let today = Utc::now().date_naive();
    let first = today - Duration::days(days - 1);
    let since = first
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    let (counts, per_day, running, failed) = tokio::try_join!(
        s.store.instance_counts(),
        s.store.instances_per_day(since),
        latest(&s, InstanceState::Running, 20),
        latest(&s, InstanceState::Failed, 10),
    )?;
    let names = TypeNames::of(&s, running.iter().chain(&failed)).await?;
    let running_now: i64 = counts
        .iter()
        .filter(|c| c.state == InstanceState::Running)
        .map(|c| c.n)
        .sum();
    let waiting: i64 = counts
        .iter()
        .filter(|c| matches!(c.state, InstanceState::Created | InstanceState::Published))
        .map(|c| c.n)
        .sum();
    let body = html! {
        h1 { "Dashboard" }
        div #dashboard data-live {
            p.big {
                strong #running-count { (running_now) } " running now · "
                strong #waiting-count { (waiting) } " waiting"
            }
            section {
                h2 { "Instances per day (" (days) " days, by state now)" }
                nav.pager aria-label="Range" {
                    @for d in [7, 14, 30] {
                        a href={ "/?days=" (d) } aria-current=[(d == days).then_some("true")] { (d) " days" } " "
                    }
                }
                (chart(first, days, &per_day))
            }
            section {
                h2 { "Running now" }
                (instance_table(&running, &names, "Nothing is running."))
            }
            section {
                h2 { "Recent failures" }
                (instance_table(&failed, &names, "No failures."))
            }
        }
    };
    Ok(live_page(
        "Dashboard",
        Some(&v),
        Live {
            events: Some("/api/events/".into()),
            poll_ms: Some(10_000),
        },
        body,
    )
    .into_response())
}

/// A stacked bar per day, one segment per state; a table with the same figures follows for
/// screen readers and for reading exact numbers.
fn chart(first: NaiveDate, days: i64, counts: &[DayStateCount]) -> Markup {
    let dates: Vec<NaiveDate> = (0..days).map(|i| first + Duration::days(i)).collect();
    let n = |d: NaiveDate, s: InstanceState| -> i64 {
        counts
            .iter()
            .filter(|c| c.day == d && c.state == s)
            .map(|c| c.n)
            .sum()
    };
    let total = |d: NaiveDate| -> i64 { InstanceState::ALL.iter().map(|s| n(d, *s)).sum() };
    let max = dates.iter().map(|d| total(*d)).max().unwrap_or(0).max(1);
    let (w, h, pad) = (640.0_f64, 200.0_f64, 24.0_f64);
    let slot = (w - pad) / days as f64;
    let bar = (slot * 0.7).max(1.0);
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (w) " " (h + pad) } role="img"
                aria-label={ "Instances per day for " (days) " days, the largest day " (max) } {
                line.axis x1=(pad) y1=(h) x2=(w) y2=(h) {}
                text.tick x="0" y="12" { (max) }
                @for (i, d) in dates.iter().enumerate() {
                    @let x = pad + slot * i as f64 + (slot - bar) / 2.0;
                    @let mut y = h;
                    @for st in InstanceState::ALL {
                        @let c = n(*d, st);
                        @if c > 0 {
                            @let bh = (c as f64 / max as f64) * (h - 16.0);
                            @let top = { y -= bh; y };
                            rect class={ "bar state-" (st.as_str()) } x=(format!("{x:.1}")) y=(format!("{top:.1}"))
                                width=(format!("{bar:.1}")) height=(format!("{bh:.1}")) {
                                title { (d) ": " (c) " " (st.as_str()) }
                            }
                        }
                    }
                    @if days <= 14 || i % (days as usize / 7).max(1) == 0 {
                        text.tick x=(format!("{:.1}", x)) y=(h + 16.0) { (d.format("%m-%d")) }
                    }
                }
            }
            figcaption {
                ul.legend {
                    @for st in InstanceState::ALL {
                        li { span class={ "swatch state-" (st.as_str()) } {} (st.as_str()) }
                    }
                }
            }
        }
        details {
            summary { "Figures" }
            div.scroll {
                table.figures {
                    thead { tr { th scope="col" { "day" } @for st in InstanceState::ALL { th scope="col" { (st.as_str()) } } } }
                    tbody {
                        @for d in &dates {
                            tr { th scope="row" { (d) } @for st in InstanceState::ALL { td { (n(*d, st)) } } }
                        }
                    }
                }
            }
        }
    }
}
