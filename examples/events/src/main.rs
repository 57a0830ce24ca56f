//! Follows saltant's status events with nothing but async-nats (docs/events.md): one JSON
//! line per event, `{"seq": <events stream sequence>, "event": {...}}`.
//!
//! saltant-example-events [--url nats://127.0.0.1:4222] [--prefix saltant]
//!     [--queue NAME | --instance UUID] [--from-seq N] [--until-final]

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), async_nats::Error> {
    let arg = |name: &str| {
        let args: Vec<String> = std::env::args().collect();
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1).cloned()
    };
    let url = arg("--url").unwrap_or("nats://127.0.0.1:4222".into());
    let prefix = arg("--prefix").unwrap_or("saltant".into());
    let until_final = std::env::args().any(|a| a == "--until-final");

    // Subjects: <prefix>.events.v2.<queue token>.<instance uuid>.<publisher token>
    let subject = match (arg("--queue"), arg("--instance")) {
        (Some(queue), _) => format!("{prefix}.events.v2.{}.>", token(&queue)),
        (None, Some(uuid)) => format!("{prefix}.events.v2.*.{uuid}.*"),
        (None, None) => format!("{prefix}.events.v2.>"),
    };
    // From a sequence number (a replay), or only what is published from now on.
    let deliver_policy = match arg("--from-seq") {
        Some(n) => DeliverPolicy::ByStartSequence {
            start_sequence: n.parse()?,
        },
        None => DeliverPolicy::New,
    };

    let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
    let stream = js
        .get_stream(format!("{}_EVENTS", prefix.to_uppercase()))
        .await?;
    let reader = OrderedConfig {
        filter_subject: subject.clone(),
        deliver_policy,
        ..Default::default()
    };
    let mut events = stream.create_consumer(reader).await?.messages().await?;
    eprintln!("following {subject}");

    while let Some(message) = events.next().await {
        let message = message?;
        let event: Value = serde_json::from_slice(&message.payload)?;
        println!(
            "{}",
            json!({ "seq": message.info()?.stream_sequence, "event": event })
        );
        let state = event["state"].as_str().unwrap_or_default();
        if until_final && ["successful", "failed", "terminated"].contains(&state) {
            break;
        }
    }
    Ok(())
}

/// A queue name as a subject token: letters, digits, `_` and `-` as they are, any other
/// byte as `=XX` (hex).
fn token(queue: &str) -> String {
    queue
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("={b:02X}"),
        })
        .collect()
}
