//! A NATS client on someone's credentials that records what the server refuses it
//! (permission violations arrive asynchronously, as `-ERR` lines).

use crate::eventually;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A client connected with a credentials file, which records the server's errors
/// (permission violations arrive asynchronously as `-ERR`).
pub struct Probe {
    pub client: async_nats::Client,
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    pub async fn connect(url: &str, creds: &Path, inbox: &str) -> Probe {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let seen = errors.clone();
        let client = async_nats::ConnectOptions::new()
            .credentials_file(creds)
            .await
            .expect("read credentials")
            .custom_inbox_prefix(inbox)
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        seen.lock().expect("errors").push(e.to_string());
                    }
                }
            })
            .connect(url)
            .await
            .expect("connect with the executor's credentials");
        Probe { client, errors }
    }

    /// Waits until the server has refused `what` on `subject`.
    pub async fn refused(&self, what: &str, subject: &str) {
        let wanted = format!("permissions violation for {what} to \"{subject}\"");
        eventually(
            Duration::from_secs(10),
            &format!("the broker refuses {what} to {subject}"),
            || async {
                let errors = self.errors.lock().expect("errors");
                errors
                    .iter()
                    .any(|e| e.to_lowercase().contains(&wanted.to_lowercase()))
                    .then_some(())
            },
        )
        .await;
    }

    /// Publishes to `subject` and waits until the server has refused it.
    pub async fn publish_refused(&self, subject: &str) {
        self.client
            .publish(subject.to_owned(), "{}".into())
            .await
            .expect("sent");
        self.refused("publish", subject).await;
    }

    /// Asks the durable consumer `consumer` of `stream` for a message: no message comes and
    /// the server refuses the request.
    pub async fn pull_refused(&self, stream: &str, consumer: &str) {
        let next = format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}");
        let asked = tokio::time::timeout(
            Duration::from_secs(3),
            self.client
                .request(next.clone(), r#"{"batch":1,"no_wait":true}"#.into()),
        )
        .await;
        assert!(
            !matches!(asked, Ok(Ok(_))),
            "{consumer} handed a message to these credentials"
        );
        self.refused("publish", &next).await;
    }

    pub fn allowed(&self, subject: &str) -> bool {
        !self
            .errors
            .lock()
            .expect("errors")
            .iter()
            .any(|e| e.contains(subject))
    }
}
