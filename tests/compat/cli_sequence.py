"""The saltant-cli 0.3.1 compatibility sequence (saltant-reference.md §8), run unchanged
against a live saltant server. Needs SALTANT_API_URL, SALTANT_AUTH_TOKEN,
SALTANT_TEST_SEED_USER, the saltant-cli command on PATH, and an executor serving every
queue. Writes its own config file under a temporary XDG_CONFIG_HOME."""

import json
import os
import subprocess
import sys
import tempfile
import uuid

STEP = ["setup"]


def check(cond, what):
    if not cond:
        raise AssertionError(f"[{STEP[0]}] {what}")


def cli(*args):
    STEP[0] = "saltant-cli " + " ".join(args)
    print("$", STEP[0], flush=True)
    p = subprocess.run(["saltant-cli", *args], capture_output=True, text=True, timeout=120)
    print(p.stdout, end="", flush=True)
    check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
    return p.stdout


def fields(out):
    """The `attr: value` lines of a get/create/put/clone/terminate/wait output."""
    d = {}
    for line in out.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            d[k.strip()] = v.strip()
    return d


def main():
    seed = os.environ["SALTANT_TEST_SEED_USER"]
    s = uuid.uuid4().hex[:6]
    home = tempfile.mkdtemp(prefix="saltant-cli-")
    os.makedirs(os.path.join(home, "saltant-cli"))
    with open(os.path.join(home, "saltant-cli", "config.yaml"), "w") as f:
        f.write(f"saltant-api-url: {os.environ['SALTANT_API_URL']}\n")
        f.write(f"saltant-auth-token: {os.environ['SALTANT_AUTH_TOKEN']}\n")
    os.environ["XDG_CONFIG_HOME"] = home
    os.environ["PAGER"] = "cat"

    out = cli("users", "list")
    check(seed in out, "seed user listed")
    check(fields(cli("users", "get", seed)).get("username") == seed, "users get")
    check(cli("users", "get", "nobody").strip() == "not found", "unknown user")

    # Types first (the whitelist needs their ids).
    et = fields(cli("executable-task-types", "create", "--name", f"cli-exec-{s}", "--command-to-run", "echo hi", "--json-required-arguments", '["a"]'))
    ct = fields(cli("container-task-types", "create", "--name", f"cli-ctr-{s}", "--command-to-run", "/run.sh", "--container-image", "alpine:3", "--container-type", "singularity"))
    check(ct.get("container_type") == "singularity", f"container type: {ct}")

    wl = fields(cli("task-whitelists", "create", "--name", f"cli-wl-{s}", "--whitelisted-container-task-types", f"[{ct['id']}]", "--whitelisted-executable-task-types", f"[{et['id']}]"))
    q = fields(cli("task-queues", "create", "--name", f"cliq-{s}", "--whitelists", f"[{wl['id']}]", "--private", "True"))
    check(q.get("private") == "True", f"private queue: {q}")
    q = fields(cli("task-queues", "put", q["id"], "--name", f"cliq-{s}", "--description", "x", "--private", "False", "--runs-executable-tasks", "True", "--runs-docker-container-tasks", "True", "--runs-singularity-container-tasks", "False", "--active", "True", "--whitelists", f"[{wl['id']}]"))
    check(q.get("private") == "False" and q.get("runs_singularity_container_tasks") == "False", f"queue put: {q}")
    w = fields(cli("task-whitelists", "put", wl["id"], "--name", f"cli-wl-{s}", "--description", "put", "--whitelisted-container-task-types", "[]", "--whitelisted-executable-task-types", f"[{et['id']}]"))
    check(w.get("whitelisted_container_task_types") == "[]", f"container list cleared: {w}")

    me = et["user"]
    out = cli("executable-task-types", "list", "--filters", json.dumps({"user__username": me}))
    check(f"cli-exec-{s}" in out, "filtered type list")
    out = cli("task-queues", "list", "--filters", json.dumps({"name__startswith": "cli"}))
    check(f"cliq-{s}" in out, "filtered queue list")
    cli("container-task-types", "list")

    inst = fields(cli("executable-task-instances", "create", "--task-type", et["id"], "--task-queue", q["id"], "--json-arguments", '{"word": "w", "a": "x"}', "--name", f"cli-inst-{s}"))
    # The type requires "a"; give it so the instance is valid.
    check(inst == {} or "uuid" in inst, "create output")
    if "uuid" not in inst:
        raise AssertionError("create printed no uuid")
    done = fields(cli("executable-task-instances", "wait", "--refresh-period", "0.5", inst["uuid"]))
    check(done.get("state") == "successful", f"wait: {done}")
    got = fields(cli("executable-task-instances", "get", inst["uuid"]))
    check(got.get("state") == "successful", f"get: {got}")
    clone = fields(cli("executable-task-instances", "clone", inst["uuid"]))
    check(clone.get("uuid") not in (None, inst["uuid"]), f"clone: {clone}")
    term = fields(cli("executable-task-instances", "terminate", clone["uuid"]))
    check(term.get("uuid") == clone["uuid"], f"terminate: {term}")
    out = cli("executable-task-instances", "list", "--filters", json.dumps({"state": "successful", "task_type": int(et["id"])}))
    check(inst["uuid"] in out, "list by state and type")

    zero = "00000000-0000-0000-0000-000000000000"
    check(cli("executable-task-instances", "get", zero).strip() == "not found", "unknown instance")
    check(f"task instance {zero} not found" in cli("executable-task-instances", "clone", zero), "clone unknown")
    print("CLI sequence: all steps passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure with its step
        print(f"FAILED at {STEP[0]}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
