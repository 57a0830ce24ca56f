//! Typed helpers for the task types and instances of both classes: make a type whitelisted
//! on new queues, create instances, wait for their states.

use crate::{Stack, eventually};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The two classes of task types and instances, each with its own endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Executable,
    Container,
}

impl Class {
    pub fn types(self) -> &'static str {
        match self {
            Class::Executable => "executabletasktypes/",
            Class::Container => "containertasktypes/",
        }
    }
    pub fn instances(self) -> &'static str {
        match self {
            Class::Executable => "executabletaskinstances/",
            Class::Container => "containertaskinstances/",
        }
    }
    /// The whitelist field listing types of this class.
    pub fn whitelisted(self) -> &'static str {
        match self {
            Class::Executable => "whitelisted_executable_task_types",
            Class::Container => "whitelisted_container_task_types",
        }
    }
}

/// The states an instance ends in.
pub fn is_final(state: &str) -> bool {
    matches!(state, "successful" | "failed" | "terminated")
}

/// `base` with the fields of `extra` set over it (both JSON objects).
pub fn merged(mut base: Value, extra: &Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    base
}

impl Stack {
    /// A task type of `class` with `fields`, whitelisted (by `<first queue>-wl`) on new
    /// public queues with these names. Returns (type id, queue ids).
    pub async fn type_on_queues(
        &self,
        class: Class,
        fields: &Value,
        queues: &[String],
    ) -> (i64, Vec<i64>) {
        let (status, ty) = self.post_json(class.types(), fields).await;
        assert_eq!(status, 201, "{ty}");
        let (status, wl) = self
            .post_json(
                "taskwhitelists/",
                &json!({"name": format!("{}-wl", queues[0]), class.whitelisted(): [ty["id"]]}),
            )
            .await;
        assert_eq!(status, 201, "{wl}");
        let mut ids = Vec::with_capacity(queues.len());
        for queue in queues {
            let (status, q) = self
                .post_json(
                    "taskqueues/",
                    &json!({"name": queue, "whitelists": [wl["id"]]}),
                )
                .await;
            assert_eq!(status, 201, "{q}");
            ids.push(q["id"].as_i64().expect("queue id"));
        }
        (ty["id"].as_i64().expect("type id"), ids)
    }

    /// An executable task type that fails its first run and succeeds after (while its flag
    /// file exists), on a new public queue `queue`. Returns (type id, queue id, the flag:
    /// remove it for the next run to fail again).
    pub async fn flaky_on_queue(
        &self,
        type_name: &str,
        queue: &str,
    ) -> (i64, i64, std::path::PathBuf) {
        let flag = self.dir.join(format!("{type_name}.flag"));
        let command = format!(
            "sh -c 'test -e {f} && exit 0; touch {f}; exit 1'",
            f = flag.display()
        );
        let (ty, q) = self.executable_on_queue(type_name, &command, queue).await;
        (ty, q, flag)
    }

    /// An executable task type running `command`, whitelisted on a new public queue
    /// `queue`. Returns (type id, queue id).
    pub async fn executable_on_queue(
        &self,
        type_name: &str,
        command: &str,
        queue: &str,
    ) -> (i64, i64) {
        let (ty, queues) = self
            .executable_on_queues(type_name, command, &[queue.to_owned()])
            .await;
        (ty, queues[0])
    }

    /// An executable task type running `command`, whitelisted (by `<first queue>-wl`) on
    /// new public queues with these names. Returns (type id, queue ids).
    pub async fn executable_on_queues(
        &self,
        type_name: &str,
        command: &str,
        queues: &[String],
    ) -> (i64, Vec<i64>) {
        let fields = json!({"name": type_name, "command_to_run": command});
        self.type_on_queues(Class::Executable, &fields, queues)
            .await
    }

    /// Another executable type running `command`, added to the whitelist
    /// `whitelist` (whose types are `already`). Returns its id.
    pub async fn another_executable(
        &self,
        type_name: &str,
        command: &str,
        whitelist: i64,
        already: &[i64],
    ) -> i64 {
        let fields = json!({"name": type_name, "command_to_run": command});
        let (status, ty) = self.post_json(Class::Executable.types(), &fields).await;
        assert_eq!(status, 201, "{ty}");
        let id = ty["id"].as_i64().expect("type id");
        let types: Vec<i64> = already.iter().copied().chain([id]).collect();
        let (status, _, body) = self
            .request(
                "PATCH",
                &format!("taskwhitelists/{whitelist}/"),
                &[("Authorization", &self.auth())],
                Some((
                    "application/json",
                    json!({Class::Executable.whitelisted(): types})
                        .to_string()
                        .into_bytes(),
                )),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    }

    /// An executable type whose every run appends its `JOB_UUID` to a marker file, on a
    /// new queue: (type id, queue id, marker path). [`Stack::runs`] reads the marker.
    pub async fn marking_type(&self, type_name: &str, queue: &str) -> (i64, i64, PathBuf) {
        let marker = self.dir.join(format!("{type_name}-runs.txt"));
        let (ty, q) = self
            .executable_on_queue(
                type_name,
                &format!("sh -c 'echo $JOB_UUID >> {}'", marker.display()),
                queue,
            )
            .await;
        (ty, q, marker)
    }

    /// Creates an instance of `class` (201 expected) with `fields` besides its type and
    /// queue (`arguments`, `max_attempts`, …). Returns its uuid.
    pub async fn create(&self, class: Class, ty: i64, q: i64, fields: Value) -> String {
        let body = merged(json!({"task_type": ty, "task_queue": q}), &fields);
        let (status, i) = self.post_json(class.instances(), &body).await;
        assert_eq!(status, 201, "{i}");
        i["uuid"].as_str().expect("uuid").to_owned()
    }

    /// Creates an instance of `class` and waits until it reaches `state`; returns its uuid
    /// and its representation then.
    pub async fn run_until(
        &self,
        class: Class,
        (ty, q): (i64, i64),
        fields: Value,
        state: &str,
        timeout: Duration,
    ) -> (String, Value) {
        let uuid = self.create(class, ty, q, fields).await;
        let body = self.wait_state_of(class, &uuid, state, timeout).await;
        (uuid, body)
    }

    /// Creates an executable instance with these arguments. Returns its uuid.
    pub async fn run_executable(&self, type_id: i64, queue_id: i64, arguments: Value) -> String {
        self.create(
            Class::Executable,
            type_id,
            queue_id,
            json!({"arguments": arguments}),
        )
        .await
    }

    /// Waits until the instance's state satisfies `done`; returns its representation.
    pub async fn wait_for(
        &self,
        class: Class,
        uuid: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> Value {
        eventually(timeout, &format!("instance {uuid} {what}"), || async {
            let (status, body) = self.get(&format!("{}{uuid}/", class.instances())).await;
            assert_eq!(status, 200, "{body}");
            let now = body["state"].as_str().unwrap_or_default();
            if done(now) {
                return Some(body);
            }
            assert!(
                !is_final(now),
                "instance {uuid} ended {now} before it was {what}: {body}\n{}",
                self.log()
            );
            None
        })
        .await
    }

    /// Waits until the instance of `class` reaches `state` (panics on another final one).
    pub async fn wait_state_of(
        &self,
        class: Class,
        uuid: &str,
        state: &str,
        timeout: Duration,
    ) -> Value {
        self.wait_for(class, uuid, timeout, &format!("to be {state}"), |s| {
            s == state
        })
        .await
    }

    /// Waits until the executable instance reaches `state` (panics on another final one).
    pub async fn wait_state(&self, uuid: &str, state: &str, timeout: Duration) -> Value {
        self.wait_state_of(Class::Executable, uuid, state, timeout)
            .await
    }

    /// Waits until the instance of `class` has ended, whichever way.
    pub async fn wait_final(&self, class: Class, uuid: &str, timeout: Duration) -> Value {
        self.wait_for(class, uuid, timeout, "to end", is_final)
            .await
    }
}

/// The fields of an instance's representation, in the original's order.
pub const INSTANCE_KEYS: [&str; 9] = [
    "uuid",
    "user",
    "name",
    "state",
    "datetime_created",
    "datetime_finished",
    "arguments",
    "task_queue",
    "task_type",
];

/// The keys of a JSON object, in order.
pub fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

impl Stack {
    /// A JetStream context on the test broker, and the stack's subject names.
    pub async fn bus(&self) -> (async_nats::jetstream::Context, saltant_bus::Names) {
        let url = crate::required_env("SALTANT_TEST_NATS_URL");
        let nats = async_nats::connect(url).await.expect("connect to nats");
        let names = saltant_bus::Names::new(&self.prefix).expect("names");
        (async_nats::jetstream::new(nats), names)
    }

    /// Asks the api to terminate the instance (202 expected); returns the answer's body.
    pub async fn terminate_instance(&self, class: Class, uuid: &str) -> Value {
        let path = format!("{}{uuid}/terminate/", class.instances());
        let (status, body) = self.post_json(&path, &json!({})).await;
        assert_eq!(status, 202, "{body}");
        body
    }
}
