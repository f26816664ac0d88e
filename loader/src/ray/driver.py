"""The driver of a loader run on a Ray cluster.

The loader ships this file in the run's package and the Ray job runs it as
its entrypoint, in the unpacked package (``loader``, ``plugins/``,
``params/``, ``plugin.env`` and the run's spec, ``ray-run.json``). It runs
the action through the packaged loader's normal isolated run (``loader run``),
in one of three ways the spec names:

``job``
    one run, the loader started here, in the job's entrypoint (which holds
    the action's resources);
``task``
    one run as a Ray task holding the action's resources, its output
    streamed back here as it comes (a generator task);
``batch``
    one run per params line, in Ray tasks holding the action's resources, at
    most ``parallel`` tasks at a time: a task a line, or in a large batch a
    few lines one after the other through the loader's own batch
    (``--params-each``, each line still its own isolated run); a line whose
    action fails is run again up to ``retries`` times, a line lost with its
    worker or node runs again elsewhere, alone, up to ``lost_retries``
    times.

What the loader's run prints (its JSON-lines events) and the driver's own
records (``{"loader_ray": KIND, ...}``, one JSON object a line) go to this
job's log, whole lines only, and the same bytes to the submitting loader
over TCP when ``--events HOST:PORT`` reaches it (the first line sent is
``LOADER-RAY/1 TOKEN``). The loader takes each line from whichever of the
two brings it first, so the connection may fail at any point: the log has
everything.

Only the standard library and Ray are used; Ray is imported for ``task``
and ``batch`` only.
"""

import argparse
import collections
import json
import os
import queue
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

SPEC_FILE = "ray-run.json"
PROTOCOL = b"LOADER-RAY/1"
# How long connecting to the loader may take before the log alone is used.
CONNECT_TIMEOUT_S = 3.0
# What may wait for the connection, in bytes, before the log alone is used.
CHANNEL_BACKLOG_BYTES = 64 << 20
# How much of a loader's stderr is kept to explain a run without an outcome.
STDERR_TAIL_BYTES = 8192
# Time a run gets past its own timeout and grace before it is killed here.
STOP_MARGIN_S = 10.0
# A stopped driver waits this long for the runs it cancelled to report.
STOP_WAIT_S = 2.0


class Channel:
    """The direct line to the submitting loader: bytes queued here are sent
    by a thread, in order, from the first on; a failure ends the line
    quietly (the log has everything)."""

    def __init__(self, address, token):
        self._queue = queue.Queue()
        self._queued = 0
        self._lock = threading.Lock()
        self._failed = None
        self._thread = threading.Thread(target=self._run, args=(address, token), daemon=True)
        self._thread.start()

    def send(self, data):
        with self._lock:
            if self._failed is not None:
                return
            self._queued += len(data)
            if self._queued > CHANNEL_BACKLOG_BYTES:
                self._failed = "more than %d bytes waited for the connection" % CHANNEL_BACKLOG_BYTES
                return
        self._queue.put(data)

    def close(self, wait_s=5.0):
        """Sends what is queued (waiting at most ``wait_s``), then closes."""
        self._queue.put(None)
        self._thread.join(wait_s)

    def _run(self, address, token):
        try:
            host, port = address.rsplit(":", 1)
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(PROTOCOL + b" " + token.encode() + b"\n")
        except (OSError, ValueError) as error:
            self._fail("cannot reach the loader at %s: %s" % (address, error))
            return
        with sock:
            while True:
                data = self._queue.get()
                if data is None:
                    return
                with self._lock:
                    self._queued -= len(data)
                    if self._failed is not None:
                        return
                try:
                    sock.sendall(data)
                except OSError as error:
                    self._fail("the connection to the loader broke: %s" % error)
                    return

    def _fail(self, reason):
        with self._lock:
            self._failed = reason
        # Stderr lines are not items: the log keeps this as a note only.
        sys.stderr.write("loader_ray: %s; the loader reads this run from the job log\n" % reason)
        sys.stderr.flush()


class Output:
    """Writes whole lines to the job's log (stdout) and the channel, from
    one thread, so that no other writer's text lands inside a line."""

    def __init__(self, channel):
        self._channel = channel
        self._partial = b""

    def write_lines(self, data):
        """Writes the whole lines ``data`` completes; keeps the rest."""
        data = self._partial + data
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        if end:
            self._emit(data[:end])

    def finish_partial(self):
        if self._partial:
            self._emit(self._partial + b"\n")
            self._partial = b""

    def record(self, kind, **fields):
        fields = dict({"loader_ray": kind}, **fields)
        self._emit(json.dumps(fields, separators=(",", ":")).encode() + b"\n")

    def _emit(self, data):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        if self._channel is not None:
            self._channel.send(data)

    def close(self):
        self.finish_partial()
        if self._channel is not None:
            self._channel.close()


def line_argv(spec, number, job_id):
    """The loader command of one run: the spec's, with its params file and
    its job id, writing its events as JSON lines."""
    return spec["loader"] + ["--params", "@params/%d.json" % number, "--job-id", job_id, "--events", "jsonl"]


def chunk_argv(spec, run_id):
    """The loader command of several batch lines, before its lines file:
    the loader's own batch (each line in its isolated run, one at a time,
    retried as ``retries`` says), its outcomes as JSON lines."""
    return spec["loader"] + ["--parallel", "1", "--retries", str(spec.get("retries", 0)), "--job-id", run_id]


def hard_timeout(spec):
    timeout = spec.get("timeout")
    if timeout is None:
        return None
    return timeout + spec.get("grace", 0) + STOP_MARGIN_S


class Tail:
    """The last bytes of a stream."""

    def __init__(self, limit):
        self._limit = limit
        self._data = b""

    def add(self, data):
        self._data = (self._data + data)[-self._limit:]

    def text(self):
        return self._data.decode("utf-8", "replace").strip()


def run_loader(argv, limit_s, on_stdout, cancelled=None):
    """Runs the loader, handing ``on_stdout`` each piece of its stdout as it
    comes; returns ``(exit code, stderr tail)``. Past ``limit_s`` seconds, or
    once ``cancelled`` (a ``threading.Event``) is set, the loader is asked
    to stop, and killed if it does not. Interrupted (a Ray cancel), it asks
    the loader to stop, waits for it, and re-raises. The loader's life is
    tied to this process's: it stops its run when this process dies (a
    worker killed with its node)."""
    argv = argv + ["--exit-with-parent", str(os.getpid())]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr = Tail(STDERR_TAIL_BYTES)
    deadline = None if limit_s is None else time.monotonic() + limit_s
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, "out")
            selector.register(process.stderr, selectors.EVENT_READ, "err")
            open_streams = 2
            while open_streams:
                wait = None if cancelled is None else 0.2
                if cancelled is not None and cancelled.is_set():
                    stop(process, 5.0)
                    cancelled = None
                    continue
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        stop(process, 5.0)
                        deadline = None
                        continue
                    wait = left if wait is None else min(wait, left)
                for key, _ in selector.select(wait):
                    data = os.read(key.fileobj.fileno(), 1 << 16)
                    if not data:
                        selector.unregister(key.fileobj)
                        open_streams -= 1
                    elif key.data == "out":
                        on_stdout(data)
                    else:
                        stderr.add(data)
        return process.wait(), stderr.text()
    except BaseException:
        stop(process, 5.0)
        raise
    finally:
        process.stdout.close()
        process.stderr.close()


def stop(process, grace_s):
    """Asks the loader to stop (it cancels the action, as on Ctrl-C), kills
    it when it has not within ``grace_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def node_id():
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (job mode): no node id
        return None


def outcome_of(line):
    """The run's outcome event in a line of its stdout, or None."""
    if b'"kind":"result"' not in line and b'"kind":"error"' not in line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if isinstance(event, dict) and event.get("kind") in ("result", "error"):
        return event
    return None


def run_line(argv, limit_s):
    """A batch line, in a Ray task: runs the loader, keeps only its outcome
    (its last event), and says on which node it ran."""
    pending = [b""]
    outcome = [None]

    def take(data):
        data = pending[0] + data
        end = data.rfind(b"\n") + 1
        pending[0] = data[end:]
        for line in data[:end].splitlines():
            found = outcome_of(line)
            if found is not None:
                outcome[0] = found

    code, stderr = run_loader(argv, limit_s, take)
    if outcome[0] is None and pending[0]:
        outcome[0] = outcome_of(pending[0])
    return {"outcome": outcome[0], "exit": code, "stderr": stderr, "node": node_id()}


def streamed(argv, limit_s):
    """Runs the loader on a thread, yielding its stdout as it comes, then
    ``("end", exit code, stderr tail)``. Cancelled (a Ray cancel interrupts
    the generator's thread, not the one that runs the loader), the loader
    stops its run before this ends."""
    pieces = collections.deque()
    done = threading.Event()
    cancelled = threading.Event()
    result = {}

    def work():
        try:
            result["code"], result["stderr"] = run_loader(argv, limit_s, pieces.append, cancelled)
        except BaseException as error:  # noqa: BLE001 - re-raised below
            result["error"] = error
        finally:
            done.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while True:
            finished = done.wait(0.005)
            while pieces:
                chunk = pieces.popleft()
                while pieces and len(chunk) < (1 << 20):
                    chunk += pieces.popleft()
                yield ("out", chunk)
            if finished and not pieces:
                break
    except BaseException:
        cancelled.set()
        done.wait(30)
        raise
    if "error" in result:
        raise result["error"]
    yield ("end", result["code"], result["stderr"])


def stream_run(argv, limit_s):
    """A single run, in a Ray generator task: yields the loader's stdout as
    it comes, then how it ended."""
    for item in streamed(argv, limit_s):
        if item[0] == "out":
            yield item
        else:
            yield ("end", {"exit": item[1], "stderr": item[2], "node": node_id()})


def run_chunk(argv_prefix, numbers, limit_s):
    """Several batch lines, in a Ray generator task: the loader's own batch
    over them (their params from the package, each at its line number),
    yielding each line's outcome as it finishes, then how the batch ended.
    One loader serves the lines, so each pays only its isolated run."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="loader-lines-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            last = 0
            for number in numbers:
                with open("params/%d.json" % number, encoding="utf-8") as params:
                    text = params.read().strip()
                # Blank lines keep each line at its number.
                file.write("\n" * (number - last - 1) + text + "\n")
                last = number
        node = node_id()
        pending = b""
        for item in streamed(argv_prefix + ["--params-each", path], limit_s):
            if item[0] == "out":
                data = pending + item[1]
                end = data.rfind(b"\n") + 1
                pending = data[end:]
                for line in data[:end].splitlines():
                    outcome = batch_outcome_of(line)
                    if outcome is not None:
                        outcome["node"] = node
                        yield ("outcome", outcome)
            else:
                yield ("end", {"exit": item[1], "stderr": item[2], "node": node})
    finally:
        os.unlink(path)


def batch_outcome_of(line):
    """A line's outcome in the loader's batch output, or None."""
    try:
        outcome = json.loads(line)
    except ValueError:
        return None
    if isinstance(outcome, dict) and isinstance(outcome.get("line"), int) and "status" in outcome:
        return outcome
    return None


def task_options(spec):
    """The Ray options of a line's task: the action's resources (Ray's task
    defaults where it declares none), and no retries by Ray itself."""
    resources = spec.get("resources") or {}
    options = {"max_retries": 0}
    for name in ("num_cpus", "num_gpus", "memory"):
        if resources.get(name) is not None:
            options[name] = resources[name]
    if resources.get("resources"):
        options["resources"] = dict(resources["resources"])
    return options


def needs(options):
    """What one task reserves, by Ray's resource names."""
    wanted = {"CPU": options.get("num_cpus", 1)}
    if options.get("num_gpus"):
        wanted["GPU"] = options["num_gpus"]
    if options.get("memory"):
        wanted["memory"] = options["memory"]
    wanted.update(options.get("resources", {}))
    return {name: amount for name, amount in wanted.items() if amount}


def import_ray(out):
    try:
        import ray

        return ray
    except ImportError as error:
        out.record(
            "fatal",
            message="the job's Python (%s) cannot import ray: %s; start the cluster from an "
            "environment whose python3 is Ray's, or name one with --ray-python" % (sys.executable, error),
        )
        return None


def connect_ray(ray):
    # Workers' output is not copied into this log: only this driver writes
    # here, in whole lines.
    ray.init(log_to_driver=False, configure_logging=False)


class Stop:
    """Set by SIGTERM (`jobs stop`, Ctrl-C in the loader) or SIGINT."""

    def __init__(self):
        self.requested = False
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self._handle)

    def _handle(self, number, frame):
        self.requested = True


def run_job(spec, run_id, out):
    """``job``: the loader runs here, in the entrypoint. Ray signals it
    directly on a stop (it is a child of this process), and this driver
    keeps relaying until it has said how it ended."""
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    argv = line_argv(spec, 1, run_id)
    code, stderr = run_loader(argv, hard_timeout(spec), out.write_lines)
    out.finish_partial()
    out.record("end", exit=code, stderr=stderr, node=None)
    # The job fails when the run did, as the loader's own exit says.
    return code if code is not None and 0 <= code < 256 else 1


def run_task(spec, run_id, out):
    """``task``: one run as a Ray task, its output relayed as it comes."""
    ray = import_ray(out)
    if ray is None:
        return 1
    stop_flag = Stop()
    connect_ray(ray)
    options = task_options(spec)
    warn_if_infeasible(ray, options, out)
    remote = ray.remote(packaged().stream_run).options(**options)
    generator = remote.remote(line_argv(spec, 1, run_id), hard_timeout(spec))
    cancelled_at = None
    succeeded = False
    while True:
        if stop_flag.requested and cancelled_at is None:
            ray.cancel(generator)
            cancelled_at = time.monotonic()
        if cancelled_at is not None and time.monotonic() - cancelled_at > STOP_WAIT_S:
            out.record("fatal", message="stopped")
            return 1
        ready, _ = ray.wait([generator], timeout=0.2)
        if not ready:
            continue
        try:
            what, value = ray.get(next(generator))
        except StopIteration:
            return 0 if succeeded else 1
        except Exception as error:  # noqa: BLE001 - the task's failure, reported
            out.finish_partial()
            kind = "lost" if lost_to_the_cluster(ray, error) else "fatal"
            out.record(kind, message=describe(error))
            return 1
        if what == "out":
            out.write_lines(value)
        else:
            out.finish_partial()
            out.record("end", **value)
            succeeded = value.get("exit") == 0


def packaged():
    """This file as the module ``loader_ray`` (it is on every worker's
    path, in the package): its task functions then reach the workers by
    name, not pickled with this script's globals."""
    import loader_ray

    return loader_ray


def lost_to_the_cluster(ray, error):
    """Whether a task failed because its worker or node went away (as
    opposed to the loader or this driver failing)."""
    exceptions = ray.exceptions
    lost = tuple(
        getattr(exceptions, name)
        for name in (
            "WorkerCrashedError",
            "NodeDiedError",
            "LocalRayletDiedError",
            "ObjectLostError",
            "OutOfMemoryError",
            "ActorDiedError",
        )
        if hasattr(exceptions, name)
    )
    return isinstance(error, lost)


def describe(error):
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return "%s: %s" % (type(error).__name__, first) if first else type(error).__name__


def warn_if_infeasible(ray, options, out):
    """A notice when no node of the cluster has what one task needs: the
    tasks then wait (an autoscaler may add such a node)."""
    wanted = needs(options)
    try:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
    except Exception:  # noqa: BLE001 - a notice only
        return
    if any(all(node.get("Resources", {}).get(name, 0) >= amount for name, amount in wanted.items()) for node in nodes):
        return
    out.record(
        "notice",
        level="warning",
        message="no node of the cluster has %s for one run; the runs wait until one has (Ctrl-C to stop)"
        % ", ".join("%s %s" % (name, amount) for name, amount in sorted(wanted.items())),
    )


def capacity(ray, options):
    """How many tasks the cluster's resources hold at once (at least 1)."""
    wanted = needs(options)
    try:
        total = ray.cluster_resources()
    except Exception:  # noqa: BLE001 - a guess only
        return 1
    fits = [int(total.get(name, 0) // amount) for name, amount in wanted.items()]
    return max(1, min(fits) if fits else 1)


def outcome_record(number, attempts, job_id, node, outcome, exit_code, stderr):
    """The record of a line's final outcome (the loader's batch outcome line,
    with where it ran)."""
    record = {"line": number, "attempts": attempts, "submission_id": job_id, "node": node}
    if outcome is not None and outcome.get("kind") == "result":
        record.update(status="succeeded", result=outcome.get("data"), error=None)
        return record
    if outcome is not None:
        data = outcome.get("data") or {}
        error = {
            "message": data.get("message", "the action failed"),
            "kind": data.get("kind", "failed"),
            "details": data.get("details"),
        }
    else:
        error = {
            "message": "the loader exited with code %s without reporting an outcome%s"
            % (exit_code, (": " + stderr) if stderr else ""),
            "kind": "crashed",
            "details": {"exit_code": exit_code},
        }
    record.update(status="failed", result=None, error=error)
    return record


#: The most lines one task runs (see ``chunk_size``).
MAX_CHUNK = 16


def chunk_size(left, slots):
    """How many of the ``left`` lines the next task runs: one, unless at
    least four tasks' worth are left for each slot of the cluster; then
    more, up to ``MAX_CHUNK``, so that a line costs its isolated run and
    little of Ray and of starting the loader. Tasks shrink as the batch
    nears its end, so that the last ones end together."""
    return max(1, min(MAX_CHUNK, left // max(1, 4 * slots)))


def run_batch(spec, run_id, out):
    """``batch``: the params lines as Ray tasks, at most ``parallel`` tasks
    (or what the cluster holds, twice over) at a time, each running one line
    or, in a large batch, a few lines one after the other through the
    loader's own batch; outcomes as they come. A line lost with its task
    runs again alone."""
    ray = import_ray(out)
    if ray is None:
        return 1
    stop_flag = Stop()
    connect_ray(ray)
    options = task_options(spec)
    warn_if_infeasible(ray, options, out)
    single = ray.remote(packaged().run_line).options(**options)
    several = ray.remote(packaged().run_chunk).options(**options)
    limit_s = hard_timeout(spec)
    parallel = spec.get("parallel")
    slots = parallel or capacity(ray, options)
    # Lines not started yet; lines to run again (alone) go first.
    fresh = collections.deque(spec["lines"])
    waiting = collections.deque()
    attempts = collections.Counter()
    failures = collections.Counter()
    losses = collections.Counter()
    running = {}
    failed = []
    window, window_checked = 0, 0.0

    def next_work():
        if waiting:
            return waiting.popleft()
        size = chunk_size(len(fresh), slots)
        if size == 1:
            return ("line", fresh.popleft())
        return ("chunk", [fresh.popleft() for _ in range(min(size, len(fresh)))])

    def submit(work):
        kind, what = work
        if kind == "line":
            attempts[what] += 1
            job_id = "%s-%d-%d" % (run_id, what, attempts[what])
            running[single.remote(line_argv(spec, what, job_id), limit_s)] = ("line", what, job_id)
            out.record("started", line=what, attempt=attempts[what])
            return
        chunk_limit = None if limit_s is None else limit_s * len(what) * (1 + spec.get("retries", 0))
        running[several.remote(chunk_argv(spec, run_id), what, chunk_limit)] = ("chunk", what, set())
        for number in what:
            attempts[number] = 1
            out.record("started", line=number, attempt=1)

    def report(record):
        if record["status"] == "failed":
            failed.append(record["line"])
        out.record("outcome", **record)

    def finish(number, job_id, node, outcome, code, stderr):
        record = outcome_record(number, attempts[number], job_id, node, outcome, code, stderr)
        if record["status"] == "failed" and failures[number] < spec.get("retries", 0):
            failures[number] += 1
            waiting.appendleft(("line", number))
            return
        report(record)

    def lose(numbers, message, lost=True):
        """Lines whose run went away: lost with their worker or node (they
        run again, alone, while they may), or failed."""
        for number in numbers:
            if lost and losses[number] < spec.get("lost_retries", 3):
                losses[number] += 1
                out.record("lost", line=number, attempt=attempts[number], message=message)
                waiting.appendleft(("line", number))
            else:
                failure = {"kind": "error", "data": {"message": "the run was lost: " + message, "kind": "crashed"}}
                finish(number, "%s-%d-%d" % (run_id, number, attempts[number]), None, failure, None, "")

    def killed(value):
        """Whether the loader was killed by a signal before it reported: it
        never kills itself, so its worker or node was going away."""
        return (value["exit"] or 0) < 0

    def take(handle):
        entry = running[handle]
        if entry[0] == "line":
            del running[handle]
            _, number, job_id = entry
            try:
                value = ray.get(handle)
            except Exception as error:  # noqa: BLE001 - a lost or failed task, reported
                lose([number], describe(error), lost_to_the_cluster(ray, error))
                return
            if value["outcome"] is None and killed(value):
                lose([number], "the loader was killed by signal %d" % -value["exit"])
                return
            finish(number, job_id, value["node"], value["outcome"], value["exit"], value["stderr"])
            return
        _, numbers, done = entry
        try:
            what, value = ray.get(next(handle))
        except StopIteration:
            del running[handle]
            return
        except Exception as error:  # noqa: BLE001 - as above
            del running[handle]
            lose([number for number in numbers if number not in done], describe(error), lost_to_the_cluster(ray, error))
            return
        if what == "outcome" and value["line"] in numbers and value["line"] not in done:
            done.add(value["line"])
            attempts[value["line"]] = value.get("attempts") or 1
            report(value)
        elif what == "end":
            left = [number for number in numbers if number not in done]
            done.update(left)
            if left and killed(value):
                lose(left, "the loader was killed by signal %d" % -value["exit"])
                return
            for number in left:
                job_id = "%s-%d-%d" % (run_id, number, attempts[number])
                finish(number, job_id, value["node"], None, value["exit"], value["stderr"])

    while (waiting or fresh or running) and not stop_flag.requested:
        if parallel is None and time.monotonic() - window_checked > 2.0:
            slots = capacity(ray, options)
            window, window_checked = 2 * slots, time.monotonic()
        limit = parallel or window
        while (waiting or fresh) and len(running) < limit:
            submit(next_work())
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        if ready:
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
        for handle in ready:
            take(handle)
    if stop_flag.requested:
        under_way = []
        for handle, entry in running.items():
            ray.cancel(handle, force=True)
            under_way.extend([entry[1]] if entry[0] == "line" else [n for n in entry[1] if n not in entry[2]])
        out.record("stopped", running=sorted(under_way))
        return 1
    out.record("end", failed=len(failed))
    # The job fails when a line did, as the loader's own exit says.
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description="Runs a loader action on this Ray cluster (see ray-run.json).")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--events", help="HOST:PORT of the submitting loader")
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    channel = Channel(args.events, args.token) if args.events else None
    out = Output(channel)
    try:
        with open(SPEC_FILE, encoding="utf-8") as file:
            spec = json.load(file)
        mode = spec["mode"]
        run = {"job": run_job, "task": run_task, "batch": run_batch}[mode]
        code = run(spec, args.run_id, out)
    except Exception as error:  # noqa: BLE001 - said in the log and to the loader
        out.finish_partial()
        out.record("fatal", message="the Ray driver failed: %s" % describe(error))
        code = 1
    finally:
        out.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
