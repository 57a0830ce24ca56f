"""The saltant-py 0.4.0 compatibility sequence (saltant-reference.md §8), run unchanged
against a live saltant server. Needs SALTANT_API_URL and SALTANT_AUTH_TOKEN (a non-admin
user), SALTANT_TEST_SEED_USER (a user that exists besides the caller) and an executor
serving every queue. Exits non-zero on the first failed check, saying which."""

import os
import sys
import time
import uuid

import saltant
from saltant.client import Client
from saltant.exceptions import AuthenticationError, BadHttpRequestError

STEP = ["setup"]


def step(name):
    STEP[0] = name
    print("step:", name, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(f"[{STEP[0]}] {what}")


def main():
    suffix = uuid.uuid4().hex[:6]
    seed_user = os.environ["SALTANT_TEST_SEED_USER"]

    step("1 from_env and a bad token")
    client = saltant.client.from_env()
    try:
        Client(base_api_url=os.environ["SALTANT_API_URL"], auth_token="0" * 40)
        check(False, "a bad token must raise AuthenticationError")
    except AuthenticationError:
        pass
    me = None

    step("2 users")
    names = [u.username for u in client.users.list()]
    check(seed_user in names, f"seed user in {names}")
    check(client.users.get(seed_user).username == seed_user, "users.get")

    step("3 executable task type create and put")
    et = client.executable_task_types.create(
        name=f"sdk-echo-{suffix}",
        command_to_run="echo",
        required_arguments=["x"],
        required_arguments_default_values={"x": 5},
        environment_variables=["HOME"],
    )
    check(isinstance(et.id, int), "type id")
    check(et.json_file_option is None, "json_file_option is None")
    check(et.datetime_created.year >= 2020, "datetime_created parsed")
    me = et.user
    et.description = "changed"
    et = et.put()
    check(et.description == "changed", "put changed the description")

    step("4 container task type create and put")
    ct = client.container_task_types.create(
        name=f"sdk-ctr-{suffix}",
        command_to_run="/run.sh",
        container_image="alpine:3",
        container_type="docker",
    )
    check(ct.logs_path == "" and ct.results_path == "", "empty paths stored as ''")
    ct2 = client.container_task_types.put(
        id=ct.id,
        name=ct.name,
        description="d",
        command_to_run=ct.command_to_run,
        environment_variables=[],
        required_arguments=[],
        required_arguments_default_values={},
        logs_path=None,
        results_path=None,
        container_image=ct.container_image,
        container_type=ct.container_type,
    )
    check(ct2.logs_path == "", f"put with logs_path=None keeps '': {ct2.logs_path!r}")

    step("5 whitelist create and patch")
    wl = client.task_whitelists.create(
        name=f"sdk-wl-{suffix}",
        whitelisted_executable_task_types=[et.id],
        whitelisted_container_task_types=[ct.id],
    )
    wl = client.task_whitelists.patch(wl.id, description="patched")
    check(wl.description == "patched", "patched description")
    check(wl.whitelisted_executable_task_types == [et.id], "patch keeps exec list")
    check(wl.whitelisted_container_task_types == [ct.id], "patch keeps container list")

    step("6 queue create, patch, put")
    q = client.task_queues.create(name=f"sdkq-{suffix}", whitelists=[wl.id])
    check(q.private is False, "private defaults false")
    check(q.runs_executable_tasks and q.runs_docker_container_tasks and q.runs_singularity_container_tasks and q.active, "flags default true")
    q = client.task_queues.patch(q.id, active=False)
    check(q.active is False, "patched inactive")
    q = client.task_queues.patch(q.id, active=True)
    check(q.active is True, "patched active")
    q = q.put()
    check(q.whitelists == [wl.id], f"put keeps whitelists: {q.whitelists}")

    step("7 get by name")
    check(client.task_queues.get(name=q.name).id == q.id, "queue by name")
    check(client.executable_task_types.get(name=et.name).id == et.id, "type by name")
    check(client.task_whitelists.get(name=wl.name).id == wl.id, "whitelist by name")

    step("8 instance create with defaults filled")
    inst = client.executable_task_instances.create(
        task_type_id=et.id, task_queue_id=q.id, arguments={}, name=f"sdk-inst-{suffix}"
    )
    check(inst.state == "created", f"state created: {inst.state}")
    check(inst.arguments == {"x": 5}, f"defaults filled: {inst.arguments}")

    step("9 sync shows progress")
    deadline = time.time() + 30
    while True:
        inst = inst.sync()
        if inst.state in ("published", "running", "successful"):
            break
        check(time.time() < deadline, f"instance stuck in {inst.state}")
        time.sleep(0.1)

    step("10 clone and terminate")
    clone = inst.clone()
    check(clone.uuid != inst.uuid, "new uuid")
    check(clone.user == me, f"clone belongs to the caller: {clone.user}")
    terminated = client.executable_task_instances.terminate(clone.uuid)
    check(terminated.uuid == clone.uuid, "terminate returns the object")

    step("11 list with filters")
    by_queue = client.executable_task_instances.list(filters={"task_queue": q.id})
    check(len(by_queue) == 2, f"two instances on the queue: {len(by_queue)}")
    named = client.executable_task_instances.list(
        filters={"name__startswith": "sdk", "state__in": "published,created,running,successful,terminated"}
    )
    check(len([i for i in named if i.name.endswith(suffix)]) == 2, "filtered by name and state")

    step("12 wait until finished: successful, failed, terminated")
    fresh = client.executable_task_instances.create(task_type_id=et.id, task_queue_id=q.id)
    done = client.executable_task_instances.wait_until_finished(fresh.uuid, refresh_period=0.5)
    check(done.state == "successful", f"echo ends successful: {done.state}")
    check(done.datetime_finished is not None, "datetime_finished set")
    ft = client.executable_task_types.create(name=f"sdk-false-{suffix}", command_to_run="false")
    lt = client.executable_task_types.create(name=f"sdk-long-{suffix}", command_to_run="sleep 600")
    client.task_whitelists.put(
        id=wl.id,
        name=wl.name,
        description=wl.description,
        whitelisted_container_task_types=[ct.id],
        whitelisted_executable_task_types=[et.id, ft.id, lt.id],
    )
    bad = client.executable_task_instances.create(task_type_id=ft.id, task_queue_id=q.id)
    bad = bad.wait_until_finished(refresh_period=0.5)
    check(bad.state == "failed", f"false ends failed: {bad.state}")
    long = client.executable_task_instances.create(task_type_id=lt.id, task_queue_id=q.id)
    deadline = time.time() + 30
    while long.sync().state != "running":
        check(time.time() < deadline, "long task did not start")
        time.sleep(0.1)
    long.terminate()
    long = long.wait_until_finished(refresh_period=0.5)
    check(long.state == "terminated", f"terminated long task: {long.state}")
    check(long.datetime_finished is not None, "terminated has datetime_finished")

    step("13 missing required argument is a 400")
    nt = client.executable_task_types.create(
        name=f"sdk-req-{suffix}", command_to_run="echo", required_arguments=["word"]
    )
    client.task_whitelists.patch(wl.id, whitelisted_executable_task_types=[et.id, ft.id, lt.id, nt.id])
    try:
        client.executable_task_instances.create(task_type_id=nt.id, task_queue_id=q.id)
        check(False, "must raise BadHttpRequestError")
    except BadHttpRequestError as e:
        check("400" in str(e), f"status 400 in {e}")

    step("14 container lists")
    ci = client.container_task_instances.create(task_type_id=ct.id, task_queue_id=q.id)
    check(any(t.id == ct.id for t in client.container_task_types.list()), "container type listed")
    check(any(i.uuid == ci.uuid for i in client.container_task_instances.list()), "container instance listed")

    print("SDK sequence: all steps passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure with its step
        print(f"FAILED at step {STEP[0]}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
