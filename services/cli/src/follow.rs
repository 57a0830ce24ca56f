//! Following instances live: the per-instance status events and the live tails of its
//! output (docs/events.md, docs/logs.md), each stream reconnecting with `Last-Event-ID` so
//! that no event or byte is lost or shown twice; the progress line on a terminal; the
//! exit status an ended instance maps to.

use crate::client::Client;
use crate::error::{Error, Result, code};
use eventsource_stream::{Event, Eventsource as _};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a stream may keep failing to reconnect before the client gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// What the callback of [`stream`] wants next.
pub enum Flow {
    Continue,
    Stop,
}

/// Reads the event stream at `path` (query included), calling `on_event` for each event,
/// until it returns [`Flow::Stop`]. A dropped connection (end of body, read time-out, a
/// 5xx answer, an `error` event) is opened again with the last event's id; only a
/// server that stays away for [`RECONNECT_FOR`] ends it with an error.
pub async fn stream(
    client: &Client,
    path: &str,
    mut on_event: impl FnMut(&Event) -> Result<Flow>,
) -> Result<()> {
    let mut last_id: Option<String> = None;
    let mut failing_since: Option<Instant> = None;
    let mut delay = Duration::from_millis(200);
    loop {
        let mut headers = vec![("Accept", "text/event-stream".to_owned())];
        if let Some(id) = &last_id {
            headers.push(("Last-Event-ID", id.clone()));
        }
        let failure = match client.send(Method::GET, path, None, true, &headers).await {
            Ok(r) => {
                let mut events = r.bytes_stream().eventsource();
                let mut failure = String::from("the server closed the stream");
                while let Some(item) = events.next().await {
                    match item {
                        Ok(e) => {
                            failing_since = None;
                            delay = Duration::from_millis(200);
                            if e.event == "error" {
                                failure = format!("the server reported: {}", e.data);
                                break;
                            }
                            if let Flow::Stop = on_event(&e)? {
                                return Ok(());
                            }
                            if !e.id.is_empty() {
                                last_id = Some(e.id.clone());
                            }
                        }
                        Err(e) => {
                            failure = e.to_string();
                            break;
                        }
                    }
                }
                failure
            }
            Err(e @ (Error::Unreachable { .. } | Error::Server(_))) => e.to_string(),
            Err(e) => return Err(e),
        };
        let since = *failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() > RECONNECT_FOR {
            return Err(Error::Unreachable {
                url: client.url(path),
                cause: format!("stream lost for {} s: {failure}", RECONNECT_FOR.as_secs()),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The progress line on stderr (a terminal only), and the writer of the task's output
/// around it.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Incomplete last lines of stdout and stderr, held while the bar is drawn.
    pending: Arc<Mutex<[String; 2]>>,
}

impl Progress {
    pub fn new(shown: bool, uuid: &str) -> Progress {
        let bar = shown.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(uuid.to_owned());
            b.set_message("waiting");
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            pending: Arc::default(),
        }
    }

    /// A line about the instance, above the bar (nothing when it is not shown).
    pub fn note(&self, line: &str) {
        if let Some(b) = &self.bar {
            b.println(line);
        }
    }

    pub fn state(&self, state: &str) {
        if let Some(b) = &self.bar {
            b.set_message(state.to_owned());
        }
    }

    /// Writes the task's output: `err` for stderr. With the bar shown, whole lines only,
    /// printed while it is hidden.
    pub fn output(&self, err: bool, text: &str) {
        let Some(bar) = &self.bar else {
            write_raw(err, text);
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let buf = &mut pending[usize::from(err)];
        buf.push_str(text);
        if let Some(cut) = buf.rfind('\n') {
            let lines: String = buf.drain(..=cut).collect();
            bar.suspend(|| write_raw(err, &lines));
        }
    }

    /// Writes what is held and removes the bar.
    pub fn finish(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        for (i, buf) in pending.iter_mut().enumerate() {
            if !buf.is_empty() {
                write_raw(i == 1, &std::mem::take(buf));
            }
        }
    }
}

fn write_raw(err: bool, text: &str) {
    // A closed pipe (`| head`) is not an error worth a message.
    if err {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
    }
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: String,
    pub attempt: Option<u64>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

impl Outcome {
    /// The exit status that reports it: the task's own when it exited, else one of the
    /// documented codes.
    pub fn exit_status(&self) -> u8 {
        match (self.state.as_str(), self.exit_code) {
            ("successful", _) => code::OK,
            ("failed", Some(n)) if n & 0xff != 0 => (n & 0xff) as u8,
            ("failed", _) => code::TASK_FAILED,
            ("terminated", _) => code::TASK_TERMINATED,
            _ => code::FAILURE,
        }
    }

    pub fn to_json(&self, uuid: &str) -> Value {
        serde_json::json!({
            "uuid": uuid,
            "state": self.state,
            "attempt": self.attempt,
            "exit_code": self.exit_code,
            "reason": self.reason,
        })
    }
}

/// The file names of an attempt's two streams, as the logs API names them.
pub fn log_name(uuid: &str, attempt: u64, stream: &str) -> String {
    if attempt <= 1 {
        format!("{uuid}-{stream}.txt")
    } else {
        format!("{uuid}-attempt{attempt}-{stream}.txt")
    }
}

/// Follows one log file to its end, writing it through `progress`.
pub async fn tail(
    client: Client,
    uuid: String,
    name: String,
    err: bool,
    progress: Progress,
) -> Result<()> {
    let path = format!("taskinstances/{uuid}/logs/{name}/tail/");
    stream(&client, &path, |e| {
        match e.event.as_str() {
            "output" => {
                let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                if let Some(t) = v["text"].as_str() {
                    progress.output(err, t);
                }
            }
            "truncated" => {
                let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                progress.note(&format!(
                    "{name}: the executor's output limit dropped {} bytes",
                    v["dropped_bytes"]
                ));
            }
            "end" => return Ok(Flow::Stop),
            _ => {}
        }
        Ok(Flow::Continue)
    })
    .await
}

/// Follows the instance until it ends: its events (shown as progress), and with `logs`
/// the live output of each attempt that runs. Returns how it ended.
pub async fn instance(
    client: &Client,
    uuid: &str,
    logs: bool,
    progress: &Progress,
) -> Result<Outcome> {
    let mut tails = tokio::task::JoinSet::new();
    let mut tailed: Vec<u64> = Vec::new();
    let mut start_tails = |attempt: u64, tails: &mut tokio::task::JoinSet<Result<()>>| {
        if !logs || tailed.contains(&attempt) {
            return;
        }
        tailed.push(attempt);
        for (stream_name, err) in [("stdout", false), ("stderr", true)] {
            tails.spawn(tail(
                client.clone(),
                uuid.to_owned(),
                log_name(uuid, attempt, stream_name),
                err,
                progress.clone(),
            ));
        }
    };
    let mut last_final: Option<Value> = None;
    let mut last_attempt: Option<u64> = None;
    let mut ended: Option<String> = None;
    let path = format!("taskinstances/{uuid}/events/");
    stream(client, &path, |e| {
        let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
        if e.event == "end" {
            ended = Some(v["state"].as_str().unwrap_or("unknown").to_owned());
            return Ok(Flow::Stop);
        }
        let state = v["state"].as_str().unwrap_or_default();
        let attempt = v["attempt"].as_u64();
        last_attempt = attempt.or(last_attempt);
        let mut line = format!("{} {state}", v["at"].as_str().unwrap_or_default());
        if attempt.is_some_and(|a| a > 1) {
            line.push_str(&format!(" (attempt {})", v["attempt"]));
        }
        if let Some(x) = v["executor"].as_str() {
            line.push_str(&format!(" on {x}"));
        }
        if let Some(r) = v["reason"].as_str() {
            line.push_str(&format!(": {r}"));
        }
        progress.note(&line);
        progress.state(state);
        if state == "running" {
            start_tails(attempt.unwrap_or(1), &mut tails);
        }
        if matches!(state, "successful" | "failed" | "terminated") {
            last_final = Some(v);
        }
        Ok(Flow::Continue)
    })
    .await?;
    // Output of an attempt whose `running` event expired or never came (it ended first).
    if let Some(f) = &last_final
        && f["executor"].is_string()
    {
        start_tails(f["attempt"].as_u64().unwrap_or(1), &mut tails);
    }
    progress.state("ended; reading the rest of the output");
    while let Some(joined) = tails.join_next().await {
        match joined {
            Ok(r) => r?,
            Err(e) => return Err(anyhow::anyhow!("log tail task: {e}").into()),
        }
    }
    let state = ended.unwrap_or_else(|| "unknown".into());
    let final_event = last_final.filter(|f| f["state"] == state.as_str());
    Ok(Outcome {
        state,
        attempt: final_event
            .as_ref()
            .and_then(|f| f["attempt"].as_u64())
            .or(last_attempt),
        exit_code: final_event.as_ref().and_then(|f| f["exit_code"].as_i64()),
        reason: final_event
            .as_ref()
            .and_then(|f| f["reason"].as_str().map(str::to_owned)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(state: &str, exit_code: Option<i64>) -> u8 {
        Outcome {
            state: state.into(),
            attempt: Some(1),
            exit_code,
            reason: None,
        }
        .exit_status()
    }

    #[test]
    fn outcomes_map_to_exit_statuses() {
        assert_eq!(outcome("successful", Some(0)), 0);
        assert_eq!(outcome("successful", None), 0);
        assert_eq!(outcome("failed", Some(3)), 3);
        assert_eq!(outcome("failed", Some(255)), 255);
        assert_eq!(outcome("failed", Some(256)), code::TASK_FAILED);
        assert_eq!(outcome("failed", Some(0)), code::TASK_FAILED);
        assert_eq!(outcome("failed", None), code::TASK_FAILED);
        assert_eq!(outcome("terminated", Some(143)), code::TASK_TERMINATED);
        assert_eq!(outcome("unknown", None), code::FAILURE);
    }

    #[test]
    fn log_names_follow_the_api() {
        assert_eq!(log_name("u", 1, "stdout"), "u-stdout.txt");
        assert_eq!(log_name("u", 3, "stderr"), "u-attempt3-stderr.txt");
    }
}
