//! `saltant events`: status events as they happen, of every visible instance or of one
//! queue's, one line (or one JSON object) per event, until interrupted.

use crate::Out;
use crate::client::Client;
use crate::error::Result;
use crate::follow::{Flow, stream};
use crate::output::Format;
use crate::resolve;
use clap::Args;
use serde_json::Value;
use std::io::Write as _;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only this queue's instances (name or id).
    #[arg(long, short)]
    pub queue: Option<String>,
    /// Start at this sequence number of the events stream (default: new events only).
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// Start at the first event stored at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// With --output json: one JSON object per line, `{"seq", "event"}`.
    #[command(flatten)]
    pub out: Out,
}

pub async fn events(client: &Client, a: EventsArgs) -> Result<()> {
    let base = match &a.queue {
        Some(q) => format!(
            "taskqueues/{}/events/",
            resolve::queue(client, q).await?["id"]
        ),
        None => "events/".to_owned(),
    };
    let mut url =
        reqwest::Url::parse(&client.url(&base)).map_err(|e| anyhow::anyhow!("events URL: {e}"))?;
    if let Some(n) = a.from_seq {
        url.query_pairs_mut()
            .append_pair("from_seq", &n.to_string());
    }
    if let Some(t) = &a.since {
        url.query_pairs_mut().append_pair("since", t);
    }
    let format = a.out.format;
    stream(client, url.as_str(), |e| {
        let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
        let line = match format {
            Format::Json => {
                serde_json::json!({"seq": e.id.parse::<u64>().ok(), "event": v}).to_string()
            }
            Format::Table => {
                let mut l = format!(
                    "{} {} {} {} {}",
                    v["at"].as_str().unwrap_or_default(),
                    v["queue"].as_str().unwrap_or_default(),
                    v["uuid"].as_str().unwrap_or_default(),
                    v["attempt"],
                    v["state"].as_str().unwrap_or_default(),
                );
                if let Some(r) = v["reason"].as_str() {
                    l.push_str(&format!(" {r}"));
                }
                l
            }
        };
        let mut o = std::io::stdout().lock();
        // A closed pipe ends the command.
        if writeln!(o, "{line}").and_then(|()| o.flush()).is_err() {
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    })
    .await
}
