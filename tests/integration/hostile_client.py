#!/usr/bin/env python3
"""A hostile client beside an honest federation (issue 15, item 9).

An independent implementation of the wire protocol (proto/federation.proto),
in Python with Debian's grpcio and message classes that `protoc
--python_out` generates at test time, plays two hostile sites against a real
coordinator while three real `samverka client` daemons train beside them:

- mallory, a registered site drafted into round 1, sends every kind of bogus
  upload for its open task (chunk index, total, size and digest lies, a second
  header, a truncated stream, chunks above the 4 MiB chunk limit and above
  the 5 MiB message cap, garbage bytes), abandons an upload and a download
  mid-stream, opens a second transfer while one is open, and finally holds a
  stalled upload and an unread download open until the coordinator cuts them
  (transfer_stall_seconds = 3), then goes silent;
- vandal, registered with no training samples (so never drafted), sends
  garbage, truncated and oversized messages to every RPC (Register, PollTask,
  DownloadModel, UploadResult, Heartbeat, SecAggSend, SecAggFetch and
  Operator/Status), out-of-range values, and floods (200 calls at once, 20
  fresh TLS connections, 8 oversized messages at once); a stranger's certificate (never registered) is refused
  what needs a registration.

Every call carries a client-side deadline and must end with the expected
gRPC status, never by that deadline; the coordinator's VmRSS is sampled
throughout and must stay bounded (see RSS_PEAK_BOUND_MIB); the coordinator must
finish all its rounds, each with the three honest sites, and exit 0.

The federation aggregates plainly (secure_aggregation = false): with
SecAgg+ a cohort of four at the default dropout rate cannot lose mallory
without aborting the round, which is the documented cost of a dropout in a
secure round, not what this suite probes.

Usage: hostile_client.py SAMVERKA_BIN   (ctest; exit 77 without grpcio)
"""
import importlib
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import grpc
except ImportError:
    print("SKIP: python3-grpcio is not installed "
          "(apt-get install python3-grpcio python3-protobuf, or scripts/install-deps)")
    sys.exit(77)

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROUNDS = 3
HONEST = ["site-a", "site-b", "site-c"]
DATA = {"site-a": "hospital-a.csv", "site-b": "hospital-b.csv", "site-c": "hospital-c.csv"}
MIB = 1 << 20
# The coordinator's receive cap (kMaxChunkBytes + 1 MiB) and chunk limit.
MESSAGE_CAP = 5 * MIB
CHUNK_LIMIT = 4 * MIB
# The coordinator's VmRSS over its figure when it starts listening. What
# hostile sites can make it hold is bounded: one upload and one download per
# site (an upload decodes into one model's floats, 0.2 MiB here), chunks of
# at most 4 MiB, two upload slots, messages of at most 5 MiB, refused past
# that but, as docs/threat-model.md says, buffered by gRPC first. So:
# - retained (read once the probes are done, honest rounds still running):
#   at most 48 MiB; seen +27 to +36 MiB, most of it the honest rounds and
#   allocator arenas. A leak per call (some 450 calls, 20 connections, ~40
#   oversized messages) would go past it;
# - peak: the same 48 MiB plus one 5 MiB message cap for each oversized
#   message in flight at once (OVERSIZED_AT_ONCE), 88 MiB.
OVERSIZED_AT_ONCE = 8
RSS_RETAINED_BOUND_MIB = 48
RSS_PEAK_BOUND_MIB = RSS_RETAINED_BOUND_MIB + OVERSIZED_AT_ONCE * 5
CALL_DEADLINE = 15.0
U64_MAX = (1 << 64) - 1

# Coordinator defects this suite finds, by name, each with the check that
# shows it. The check still runs and its figures are printed, but it is
# reported as skipped instead of failing while the name is listed here;
# remove the entry with the fix (or run with SAMVERKA_HOSTILE_STRICT=1).
KNOWN_DEFECTS = set()  # none open; add a name here to skip a check on a known defect
if os.environ.get("SAMVERKA_HOSTILE_STRICT") == "1":
    KNOWN_DEFECTS = set()

Code = grpc.StatusCode
failures = []
skipped = []  # (defect, what) of checks that failed on a known defect
results = []  # (probe, status) for the report


def check(ok, what, defect=None):
    """Records a failure unless `ok`; one due to a KNOWN_DEFECTS entry is
    recorded as skipped."""
    if not ok and defect in KNOWN_DEFECTS:
        skipped.append((defect, what))
        print("SKIPPED (known coordinator defect %s): %s" % (defect, what), flush=True)
    elif not ok:
        what = "[%s] %s" % (threading.current_thread().name, what)
        failures.append(what)
        print("FAIL:", what, flush=True)


# --- processes ---------------------------------------------------------


class Process:
    """A child whose merged output is collected by a thread; waits have deadlines."""

    def __init__(self, argv, cwd, name):
        self.name = name
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def output(self):
        with self.cond:
            return "".join(self.lines)

    def count(self, pattern):
        with self.cond:
            return sum(1 for line in self.lines if re.search(pattern, line))

    def wait_for(self, pattern, timeout, count=1):
        """True once `count` lines match `pattern` (a regex), False at the deadline or EOF."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                if sum(1 for line in self.lines if re.search(pattern, line)) >= count:
                    return True
                left = end - time.monotonic()
                if left <= 0 or self.eof:
                    return False
                self.cond.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def vm_rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class RssSampler:
    """Samples a process's VmRSS every 100 ms until stopped; keeps the peak."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            rss = vm_rss_mib(self.pid)
            if rss is not None:
                self.peak = max(self.peak, rss)
            self.stopped.wait(0.1)  # the sampling period, not synchronisation

    def stop(self):
        self.stopped.set()
        self.thread.join()


# --- the wire protocol, independently -----------------------------------

pb = None  # federation_pb2, generated at run time


def generate_messages(out_dir):
    protoc = shutil.which("protoc", path="/usr/bin:" + os.environ.get("PATH", ""))
    if protoc is None:
        print("FAIL: protoc (protobuf-compiler) is not installed")
        sys.exit(1)
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([protoc, "-I", os.path.join(SOURCE_DIR, "proto"), "--python_out", out_dir,
                    os.path.join(SOURCE_DIR, "proto", "federation.proto")], check=True)
    sys.path.insert(0, out_dir)
    return importlib.import_module("federation_pb2")


def raw(x):
    return x


class Site:
    """Stubs of samverka.v1.Federation and samverka.v1.Operator over one mTLS
    channel. Each method has a typed form and, with the suffix _raw, one
    that sends bytes as they are (garbage, truncated, oversized)."""

    def __init__(self, target, ca, cert, key, bdp_probe=True):
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
        options = [("grpc.max_receive_message_length", 8 * MIB),
                   ("grpc.max_send_message_length", 16 * MIB),
                   ("grpc.use_local_subchannel_pool", 1)]
        if not bdp_probe:
            options.append(("grpc.http2.bdp_probe", 0))
        self.channel = grpc.secure_channel(target, credentials, options)
        for name, kind, request, response in [
                ("Register", "unary_unary", pb.RegisterRequest, pb.RegisterResponse),
                ("PollTask", "unary_unary", pb.PollTaskRequest, pb.PollTaskResponse),
                ("DownloadModel", "unary_stream", pb.DownloadModelRequest, pb.TensorChunk),
                ("UploadResult", "stream_unary", pb.UploadMessage, pb.UploadResponse),
                ("Heartbeat", "unary_unary", pb.HeartbeatRequest, pb.HeartbeatResponse),
                ("SecAggSend", "unary_unary", pb.SecAggSendRequest, pb.SecAggSendResponse),
                ("SecAggFetch", "unary_unary", pb.SecAggFetchRequest, pb.SecAggFetchResponse)]:
            self._add("/samverka.v1.Federation/" + name, name, kind, request, response)
        self._add("/samverka.v1.Operator/Status", "Status", "unary_unary", pb.StatusRequest,
                  pb.StatusResponse)

    def _add(self, path, name, kind, request, response):
        make = getattr(self.channel, kind)
        setattr(self, name, make(path, request_serializer=request.SerializeToString,
                                 response_deserializer=response.FromString))
        setattr(self, name + "_raw", make(path, request_serializer=raw,
                                          response_deserializer=response.FromString))

    def close(self):
        self.channel.close()


def status_of(call, *args, timeout=CALL_DEADLINE, **kwargs):
    """The gRPC status code of a unary (or stream-unary) call."""
    try:
        call(*args, timeout=timeout, **kwargs)
        return Code.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def download_status(call, request, timeout=CALL_DEADLINE):
    """Reads a download to its end: (status, chunks)."""
    chunks = []
    try:
        for chunk in call(request, timeout=timeout):
            chunks.append(chunk)
        return Code.OK, "", chunks
    except grpc.RpcError as e:
        return e.code(), e.details() or "", chunks


def expect(probe, got, codes, fragment=None):
    code, details = got[0], got[1]
    if not isinstance(codes, (list, tuple, set)):
        codes = [codes]
    results.append(("[%s] %s" % (threading.current_thread().name, probe), code.name))
    ok = code in codes and (fragment is None or fragment in details)
    check(ok, "%s: got %s '%s', want %s%s" % (
        probe, code.name, details, "/".join(c.name for c in codes),
        " with '%s'" % fragment if fragment else ""))


# Bytes no protobuf parser accepts: a varint that never ends.
GARBAGE = b"\xff" * 64


def truncated(message):
    data = message.SerializeToString()
    return data[:len(data) // 2]


def oversized(size=MESSAGE_CAP + 64 * 1024):
    # A RegisterRequest whose client_version is larger than the receive cap.
    return pb.RegisterRequest(protocol_version=pb.PROTOCOL_VERSION_1,
                              client_version="x" * size).SerializeToString()


# --- the federation -----------------------------------------------------


def write_pki(binary, work):
    def pki(*args):
        subprocess.run([binary, "pki"] + list(args), cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
    pki("init", "--dir", "pki", "--federation", "hostile-test")
    pki("issue", "--dir", "pki", "--name", "coordinator", "--role", "coordinator",
        "--san", "127.0.0.1")
    for site in HONEST + ["mallory", "vandal", "stranger"]:
        pki("issue", "--dir", "pki", "--name", site)
    pki("issue", "--dir", "pki", "--name", "operator", "--role", "operator")


def write_configs(work):
    # Four sites per round, three enough: round 1 waits for mallory too.
    with open(os.path.join(work, "coordinator.toml"), "w") as f:
        f.write('federation_id = "hostile-test"\nlisten = "127.0.0.1:0"\nstate_dir = "state"\n'
                'rounds = %d\nmodel = "mlp"\ninput_shape = [30]\nnum_classes = 2\n'
                "clients_per_round = 4\nmin_clients = 3\nwait_for_clients = 4\n"
                "secure_aggregation = false\n"
                # Silent for 3 x 2 + 2 = 8 s: offline. Mallory's probes
                # heartbeat between them, so only its final silence counts.
                "heartbeat_seconds = 2\nmax_poll_seconds = 2\ntrain_deadline_seconds = 40\n"
                "eval_deadline_seconds = 20\nlr = 0.1\ntransfer_stall_seconds = 3\n"
                '[tls]\nca_certificate = "pki/ca/ca.crt"\n'
                'certificate = "pki/sites/coordinator/coordinator.crt"\n'
                'private_key = "pki/sites/coordinator/coordinator.key"\ncrl = "pki/ca/crl.pem"\n'
                % ROUNDS)
    os.makedirs(os.path.join(work, "state"), exist_ok=True)


def write_client_config(work, site, target):
    path = os.path.join(work, site + ".toml")
    with open(path, "w") as f:
        f.write('coordinator = "%s"\n'
                'poll_seconds = 1\nmax_backoff_seconds = 1\nstate_dir = "state-%s"\n'
                '[datasets]\nbreast = "csv:%s:malignant"\n'
                '[tls]\nca_certificate = "pki/ca/ca.crt"\n'
                'certificate = "pki/sites/%s/%s.crt"\nprivate_key = "pki/sites/%s/%s.key"\n'
                % (target, site, os.path.join(SOURCE_DIR, "examples/healthcare", DATA[site]),
                   site, site, site, site))
    return path


def site_stub(work, target, name, **kwargs):
    def read(*parts):
        with open(os.path.join(work, *parts), "rb") as f:
            return f.read()
    return Site(target, read("pki/ca/ca.crt"), read("pki/sites", name, name + ".crt"),
                read("pki/sites", name, name + ".key"), **kwargs)


def register(site, train, evaluation=0):
    return status_of(site.Register, pb.RegisterRequest(
        protocol_version=pb.PROTOCOL_VERSION_1, num_train_samples=train,
        num_eval_samples=evaluation, client_version="hostile-0"))


# --- mallory: a drafted site that lies about its upload ------------------


def header(task, **overrides):
    fields = dict(task_id=task.task_id, round=task.round, kind=pb.TASK_KIND_TRAIN,
                  model_digest=task.model_digest, num_samples=10)
    fields.update(overrides)
    return pb.UploadMessage(header=pb.ResultHeader(**fields))


def chunks_of(payload, digest, size=64 * 1024, total=None, total_bytes=None, first_index=0):
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    return [pb.UploadMessage(chunk=pb.TensorChunk(
        payload_digest=digest, index=first_index + i,
        total_chunks=len(pieces) if total is None else total,
        total_bytes=len(payload) if total_bytes is None else total_bytes, data=piece))
        for i, piece in enumerate(pieces)]


class HeldStream:
    """A request iterator that yields `messages` and then holds the stream
    open, sending nothing, until released: a stalled or abandoned upload.
    `sent` is set once gRPC asks for the message after the last one, that is
    once every message has been handed to gRPC."""

    def __init__(self, messages):
        self.messages = list(messages)
        self.sent = threading.Event()
        self.release = threading.Event()

    def __iter__(self):
        for m in self.messages:
            yield m
        self.sent.set()
        self.release.wait(120)


def upload(site, messages, timeout=CALL_DEADLINE):
    return status_of(site.UploadResult, iter(messages), timeout=timeout)


def with_free_slot(attempt, deadline=8.0):
    """Runs `attempt` (returning a status tuple) again while the coordinator
    still holds the site's previous (abandoned) transfer, up to `deadline` s:
    freeing the slot takes the coordinator a moment after the cancel."""
    end = time.monotonic() + deadline
    while True:
        got = attempt()
        if got[0] != Code.RESOURCE_EXHAUSTED or time.monotonic() > end:
            return got
        threading.Event().wait(0.2)  # retry interval of a bounded wait


def mallory_bogus_uploads(mallory, task, model):
    d = task.model_digest
    good = chunks_of(model, d)
    hb = lambda: status_of(mallory.Heartbeat, pb.HeartbeatRequest(task_id=task.task_id, progress=0.5))
    expect("heartbeat of an open task", hb(), Code.OK)
    probes = [
        ("upload: a chunk before any header", good[:1], Code.INVALID_ARGUMENT, "result header"),
        ("upload: an empty stream", [], Code.INVALID_ARGUMENT, "result header"),
        ("upload: a header and no chunks", [header(task)], [Code.INVALID_ARGUMENT, Code.DATA_LOSS], None),
        ("upload: a second header", [header(task)] + good[:1] + [header(task)],
         Code.INVALID_ARGUMENT, "second header"),
        ("upload: chunk indexes from 7", [header(task)] + chunks_of(model, d, first_index=7),
         Code.INVALID_ARGUMENT, "out of order"),
        ("upload: a chunk index repeated", [header(task)] + good[:1] + good[:1] + good[1:],
         Code.INVALID_ARGUMENT, None),
        ("upload: total_chunks 2^64-1", [header(task)] + chunks_of(model, d, total=U64_MAX),
         Code.INVALID_ARGUMENT, "upload ended after"),
        ("upload: total_chunks 0", [header(task)] + chunks_of(model, d, total=0),
         Code.INVALID_ARGUMENT, None),
        ("upload: total_bytes 2^64-1", [header(task)] + chunks_of(model, d, total_bytes=U64_MAX),
         Code.INVALID_ARGUMENT, None),
        ("upload: chunks disagree on the total",
         [header(task)] + good[:1] + chunks_of(model, d, total=len(good) + 1)[1:],
         Code.INVALID_ARGUMENT, "disagree"),
        ("upload: a digest the bytes do not have",
         [header(task)] + chunks_of(model, "a" * 64), Code.DATA_LOSS, "SHA-256"),
        ("upload: truncated after half the chunks", [header(task)] + good[:len(good) // 2],
         Code.INVALID_ARGUMENT, "upload ended after"),
        ("upload: more bytes than the model",
         [header(task)] + chunks_of(model + b"\0" * (256 * 1024), d), Code.INVALID_ARGUMENT, None),
        ("upload: a 4.5 MiB chunk (over the 4 MiB chunk limit)",
         [header(task)] + chunks_of(b"\0" * (CHUNK_LIMIT + MIB // 2), d, size=8 * MIB),
         Code.INVALID_ARGUMENT, None),
        ("upload: a 5.06 MiB chunk (over the 5 MiB message cap)",
         [header(task)] + chunks_of(b"\0" * (MESSAGE_CAP + 64 * 1024), d, size=8 * MIB),
         Code.RESOURCE_EXHAUSTED, None),
        ("upload: another model's digest", [header(task, model_digest="b" * 64)] + good,
         Code.INVALID_ARGUMENT, "another model"),
        ("upload: kind evaluate for a training task", [header(task, kind=pb.TASK_KIND_EVALUATE)] + good,
         Code.INVALID_ARGUMENT, "kind"),
        ("upload: a masked input in a plain round", [header(task, masked_input=True, num_samples=0)] + good,
         Code.FAILED_PRECONDITION, "masked input is refused"),
        ("upload: a task id never given", [header(task, task_id="round-1-nope\n")] + good,
         Code.FAILED_PRECONDITION, "no open task"),
        ("upload: num_samples -1", [header(task, num_samples=-1)] + good, Code.INVALID_ARGUMENT, None),
        ("upload: num_samples 2^63-1", [header(task, num_samples=(1 << 63) - 1)] + good,
         Code.INVALID_ARGUMENT, None),
        ("upload: a NaN training loss",
         [pb.UploadMessage(header=pb.ResultHeader(
             task_id=task.task_id, round=task.round, kind=pb.TASK_KIND_TRAIN, model_digest=d,
             num_samples=10, metrics=[pb.Metric(name="train_loss", value=float("nan"))]))] + good,
         Code.INVALID_ARGUMENT, None),
        ("upload: a 2 MiB header of 2,000 unknown metrics",
         [pb.UploadMessage(header=pb.ResultHeader(
             task_id=task.task_id, round=task.round, kind=pb.TASK_KIND_TRAIN, model_digest=d,
             num_samples=10, metrics=[pb.Metric(name="m%d" % i + "x" * 1024, value=1.0)
                                      for i in range(2000)]))] + [],
         [Code.INVALID_ARGUMENT, Code.DATA_LOSS], None),
    ]
    for name, messages, codes, fragment in probes:
        expect(name, with_free_slot(lambda: upload(mallory, messages)), codes, fragment)
        expect("heartbeat after " + name.split(":")[0], hb(), Code.OK)
    raw_probes = [
        ("upload: garbage bytes as the first message", [GARBAGE]),
        ("upload: a truncated header", [truncated(header(task))]),
        ("upload: garbage after a good header", [header(task).SerializeToString(), GARBAGE]),
        ("upload: a truncated chunk after a good header",
         [header(task).SerializeToString(), truncated(good[0])]),
    ]
    for name, messages in raw_probes:
        got = with_free_slot(lambda: status_of(mallory.UploadResult_raw, iter(messages)))
        expect(name, got, [Code.INTERNAL, Code.INVALID_ARGUMENT])
    expect("heartbeat after the raw uploads", hb(), Code.OK)


def mallory_abandons(mallory, task, model):
    d = task.model_digest
    # An upload abandoned mid-stream: header and one chunk, then cancelled.
    held = HeldStream([header(task)] + chunks_of(model, d)[:1])
    future = mallory.UploadResult.future(iter(held), timeout=CALL_DEADLINE)
    check(held.sent.wait(CALL_DEADLINE), "the abandoned upload was never sent")
    future.cancel()
    held.release.set()
    expect("upload: abandoned mid-stream (client side)",
           (future.code() if future.cancelled() or future.done() else Code.UNKNOWN, ""),
           Code.CANCELLED)
    # The slot is freed: a download and then a truncated upload get their
    # own answers, not "already has an upload open".
    request = pb.DownloadModelRequest(model_digest=d, chunk_bytes=64 * 1024)
    stream = mallory.DownloadModel(request, timeout=CALL_DEADLINE)
    first = next(stream)
    check(first.index == 0 and first.payload_digest == d, "the first chunk of a download")
    stream.cancel()
    expect("download: abandoned after one chunk (client side)", (stream.code(), ""), Code.CANCELLED)
    got = with_free_slot(lambda: download_status(mallory.DownloadModel, request))
    expect("download: again after an abandoned one", got, Code.OK)
    check(b"".join(c.data for c in got[2]) == model, "the download after an abandoned one is whole")
    got = with_free_slot(lambda: upload(mallory, [header(task)] + chunks_of(model, d)[:1]))
    expect("upload: again after an abandoned one (truncated)", got, Code.INVALID_ARGUMENT,
           "upload ended after")


def mallory_downloads(mallory, task, model):
    d = task.model_digest
    for name, chunk_bytes in [("download: chunk_bytes 2^64-1", U64_MAX), ("download: chunk_bytes 1", 1),
                              ("download: chunk_bytes 0 (the default)", 0)]:
        got = with_free_slot(lambda: download_status(
            mallory.DownloadModel, pb.DownloadModelRequest(model_digest=d, chunk_bytes=chunk_bytes)))
        expect(name, got, Code.OK)
        check(b"".join(c.data for c in got[2]) == model and
              all(len(c.data) <= CHUNK_LIMIT for c in got[2]), name + ": whole, chunks <= 4 MiB")
    expect("download: a digest no task has", download_status(
        mallory.DownloadModel, pb.DownloadModelRequest(model_digest="c" * 64)),
        Code.FAILED_PRECONDITION)
    expect("download: garbage request", download_status(mallory.DownloadModel_raw, GARBAGE),
           [Code.INTERNAL, Code.INVALID_ARGUMENT])
    expect("download: truncated request", download_status(
        mallory.DownloadModel_raw, truncated(pb.DownloadModelRequest(model_digest=d))),
        [Code.INTERNAL, Code.INVALID_ARGUMENT])
    expect("download: oversized request", download_status(
        mallory.DownloadModel_raw,
        pb.DownloadModelRequest(model_digest="d" * (MESSAGE_CAP + 1024)).SerializeToString()),
        Code.RESOURCE_EXHAUSTED)


def mallory_stalls(mallory, task, model, coordinator):
    """A stalled uploader and an unread downloader, together; both must be
    cut within transfer_stall_seconds (3 s) plus the watch's period, and a
    second transfer of each kind is refused while they are open."""
    d = task.model_digest
    unread = mallory.DownloadModel(pb.DownloadModelRequest(model_digest=d, chunk_bytes=64 * 1024),
                                   timeout=60)
    # Never read: gRPC's window (BDP probing off on this channel) fills with
    # the first chunk and the coordinator's next write blocks.
    held = HeldStream([header(task)] + chunks_of(model, d)[:1])
    stalled = mallory.UploadResult.future(iter(held), timeout=60)
    check(held.sent.wait(CALL_DEADLINE), "the stalled upload was never sent")
    # Both transfers hold their slots: a second of each kind is refused.
    expect("upload: a second one while one is open",
           upload(mallory, [header(task)] + chunks_of(model, d)), Code.RESOURCE_EXHAUSTED)
    expect("download: a second one while one is open", download_status(
        mallory.DownloadModel, pb.DownloadModelRequest(model_digest=d)), Code.RESOURCE_EXHAUSTED)
    # Now the stream holds still; this wait is the behaviour under test.
    started = time.monotonic()
    check(coordinator.wait_for(r"cut the model upload of site mallory", 20),
          "the stalled upload was not cut within 20 s")
    check(coordinator.wait_for(r"cut the model download of site mallory", 20),
          "the unread download was not cut within 20 s")
    cut_after = time.monotonic() - started
    held.release.set()
    try:
        stalled.result(timeout=CALL_DEADLINE)
        code = Code.OK
    except grpc.RpcError as e:
        code = e.code()
    expect("upload: stalled, as the client sees its end", (code, ""),
           [Code.CANCELLED, Code.DEADLINE_EXCEEDED])
    code = Code.OK
    try:
        for _ in unread:
            pass
    except grpc.RpcError as e:
        code = e.code()
    expect("download: unread, as the client sees its end", (code, ""),
           [Code.CANCELLED, Code.DEADLINE_EXCEEDED])
    return cut_after


# --- vandal: garbage to every RPC ---------------------------------------


def vandal_probes(vandal, stranger, operator):
    v1 = pb.PROTOCOL_VERSION_1
    # A site not yet registered has no tasks; a stranger never registers.
    expect("poll before registering", status_of(vandal.PollTask, pb.PollTaskRequest(
        protocol_version=v1, wait_seconds=0)), Code.NOT_FOUND)
    expect("register: no samples (never drafted)", register(vandal, 0), Code.OK)
    expect("register: protocol version 0", status_of(vandal.Register, pb.RegisterRequest()),
           Code.FAILED_PRECONDITION, "protocol version")
    expect("register: protocol version 99", status_of(vandal.Register, pb.RegisterRequest(
        protocol_version=99)), Code.FAILED_PRECONDITION)
    expect("register: -1 samples", register(vandal, -1), Code.INVALID_ARGUMENT)
    expect("register: 2^63-1 samples", register(vandal, 0, (1 << 63) - 1), Code.INVALID_ARGUMENT)
    expect("register: 1 MiB client_version", status_of(vandal.Register, pb.RegisterRequest(
        protocol_version=v1, client_version="\n\x1b" * (MIB // 2))), Code.OK)

    # Garbage, truncated and oversized bytes to every unary RPC.
    typed = {
        "Register": pb.RegisterRequest(protocol_version=v1, client_version="x" * 100),
        "PollTask": pb.PollTaskRequest(protocol_version=v1, wait_seconds=1.0),
        "Heartbeat": pb.HeartbeatRequest(task_id="t" * 100, progress=0.5),
        "SecAggSend": pb.SecAggSendRequest(task_id="t" * 100, round=1, stage=1, payload=b"p" * 100),
        "SecAggFetch": pb.SecAggFetchRequest(task_id="t" * 100, round=1, stage=2, wait_seconds=1),
        "Status": pb.StatusRequest(),
    }
    for rpc, message in typed.items():
        callers = [("site", vandal)] if rpc != "Status" else [("operator", operator)]
        for who, site in callers:
            call = getattr(site, rpc + "_raw")
            expect("%s (%s): garbage bytes" % (rpc, who), status_of(call, GARBAGE),
                   [Code.INTERNAL, Code.INVALID_ARGUMENT])
            if rpc != "Status":  # StatusRequest has no fields to cut
                expect("%s (%s): truncated" % (rpc, who), status_of(call, truncated(message)),
                       [Code.INTERNAL, Code.INVALID_ARGUMENT])
            expect("%s (%s): oversized (5 MiB + 64 KiB)" % (rpc, who), status_of(call, oversized()),
                   Code.RESOURCE_EXHAUSTED)
    # Seeded random bytes: they may even parse; whatever they are, a status.
    rng = random.Random(15)
    for rpc in typed:
        site = operator if rpc == "Status" else vandal
        for n in (1, 7, 100, 4096):
            got = status_of(getattr(site, rpc + "_raw"), bytes(rng.getrandbits(8) for _ in range(n)),
                            timeout=CALL_DEADLINE)
            expect("%s: %d random bytes" % (rpc, n), got,
                   [c for c in Code if c not in (Code.DEADLINE_EXCEEDED, Code.UNAVAILABLE)])

    # Out-of-range values that parse.
    for name, wait in [("NaN", float("nan")), ("-1", -1.0), ("1e308", 1e308), ("inf", float("inf"))]:
        started = time.monotonic()
        got = status_of(vandal.PollTask, pb.PollTaskRequest(protocol_version=v1, wait_seconds=wait))
        expect("poll: wait_seconds " + name, got, Code.OK)
        check(time.monotonic() - started < 5, "poll with wait_seconds %s took more than "
              "max_poll_seconds (2 s) and then some" % name)
    expect("heartbeat: a task never given", status_of(vandal.Heartbeat, pb.HeartbeatRequest(
        task_id="round-1-train", progress=float("nan"))), Code.OK)
    for stage in (0, 1, 5, 99, -7):
        expect("secagg send: stage %d, no task" % stage, status_of(vandal.SecAggSend, pb.SecAggSendRequest(
            task_id="x", round=-1, stage=stage, payload=GARBAGE)),
            [Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.NOT_FOUND])
        started = time.monotonic()
        expect("secagg fetch: stage %d, wait 1e9 s" % stage, status_of(vandal.SecAggFetch, pb.SecAggFetchRequest(
            task_id="x", round=-1, stage=stage, wait_seconds=1e9)),
            [Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.NOT_FOUND, Code.OK])
        check(time.monotonic() - started < 5, "secagg fetch with wait 1e9 took over 5 s")
    expect("secagg send: a 4.9 MiB payload", status_of(vandal.SecAggSend, pb.SecAggSendRequest(
        task_id="x", round=1, stage=1, payload=b"\0" * (MESSAGE_CAP - 100 * 1024))),
        [Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.NOT_FOUND])
    expect("upload: no task", upload(vandal, [pb.UploadMessage(header=pb.ResultHeader(
        task_id="round-1-train", round=1, kind=pb.TASK_KIND_TRAIN, model_digest="0" * 64,
        num_samples=0))]), Code.FAILED_PRECONDITION, "no open task")
    # Unknown metrics are ignored, but their names reach the log (see
    # KNOWN_DEFECTS): 20,000 short ones in a 200 KiB header.
    expect("upload: no task, 20,000 unknown metrics", upload(vandal, [pb.UploadMessage(
        header=pb.ResultHeader(task_id="round-1-train", round=1, kind=pb.TASK_KIND_TRAIN,
                               model_digest="0" * 64,
                               metrics=[pb.Metric(name="u%d" % i, value=0.0) for i in range(20000)]))]),
        Code.FAILED_PRECONDITION, "no open task")
    expect("upload: no task, garbage", status_of(vandal.UploadResult_raw, iter([GARBAGE] * 3)),
           [Code.INTERNAL, Code.INVALID_ARGUMENT])
    expect("upload: no task, oversized", status_of(vandal.UploadResult_raw, iter([oversized()])),
           Code.RESOURCE_EXHAUSTED)
    expect("download: no task", download_status(vandal.DownloadModel, pb.DownloadModelRequest(
        model_digest="0" * 64)), Code.FAILED_PRECONDITION, "has no open task")
    expect("download: stranger", download_status(stranger.DownloadModel, pb.DownloadModelRequest(
        model_digest="0" * 64)), Code.FAILED_PRECONDITION)
    expect("poll: stranger", status_of(stranger.PollTask, pb.PollTaskRequest(protocol_version=v1)),
           Code.NOT_FOUND)
    expect("status: with a site certificate", status_of(vandal.Status, pb.StatusRequest()),
           Code.PERMISSION_DENIED)
    expect("status: with the operator's", status_of(operator.Status, pb.StatusRequest()), Code.OK)
    expect("register: with the operator's", register(operator, 5), Code.PERMISSION_DENIED)


def vandal_floods(vandal, work, target):
    """200 calls at once on one channel, then 20 fresh TLS connections."""
    v1 = pb.PROTOCOL_VERSION_1
    futures = []
    for i in range(200):
        kind = i % 4
        if kind == 0:
            futures.append(vandal.Heartbeat.future(pb.HeartbeatRequest(task_id="f%d" % i), timeout=30))
        elif kind == 1:
            futures.append(vandal.PollTask.future(pb.PollTaskRequest(protocol_version=v1), timeout=30))
        elif kind == 2:
            futures.append(vandal.Register.future(pb.RegisterRequest(protocol_version=v1), timeout=30))
        else:
            futures.append(vandal.Register_raw.future(GARBAGE, timeout=30))
    codes = {}
    for f in futures:
        try:
            f.result(timeout=40)
            code = Code.OK
        except grpc.RpcError as e:
            code = e.code()
        except grpc.FutureTimeoutError:
            code = Code.DEADLINE_EXCEEDED
        codes[code.name] = codes.get(code.name, 0) + 1
    results.append(("flood: 200 calls at once", str(codes)))
    check(codes.get("OK", 0) == 150 and codes.get("INTERNAL", 0) + codes.get("INVALID_ARGUMENT", 0) == 50,
          "flood of 200 calls: want 150 OK and 50 parse errors, got %s" % codes)
    connection_codes = {}
    for _ in range(20):
        fresh = site_stub(work, target, "vandal")
        code = register(fresh, 0)[0]
        fresh.close()
        connection_codes[code.name] = connection_codes.get(code.name, 0) + 1
    results.append(("flood: 20 fresh connections", str(connection_codes)))
    check(connection_codes == {"OK": 20}, "20 fresh connections: %s" % connection_codes)
    big = oversized()
    futures = [vandal.Register_raw.future(big, timeout=60) for _ in range(OVERSIZED_AT_ONCE)]
    codes = {}
    for f in futures:
        try:
            f.result(timeout=70)
            code = Code.OK
        except grpc.RpcError as e:
            code = e.code()
        codes[code.name] = codes.get(code.name, 0) + 1
    results.append(("flood: %d oversized messages at once" % OVERSIZED_AT_ONCE, str(codes)))
    check(codes == {"RESOURCE_EXHAUSTED": OVERSIZED_AT_ONCE},
          "%d oversized messages at once: %s" % (OVERSIZED_AT_ONCE, codes))


# --- the run --------------------------------------------------------------


def rounds_in_state(work):
    """(round, succeeded, participants) from the coordinator's SQLite state, read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(work, "state", "state.db"), uri=True)
    try:
        rows = db.execute("SELECT round, succeeded, failure_reason FROM rounds ORDER BY round").fetchall()
        out = []
        for number, succeeded, reason in rows:
            members = sorted(r[0] for r in db.execute(
                "SELECT client FROM participants WHERE round = ?", (number,)))
            out.append((number, succeeded, reason, members))
        return out
    finally:
        db.close()


def poll_for_task(site, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        response = site.PollTask(pb.PollTaskRequest(protocol_version=pb.PROTOCOL_VERSION_1,
                                                    wait_seconds=2), timeout=10)
        if response.HasField("task"):
            return response.task
    return None


def run(binary, work):
    global pb
    threading.current_thread().name = "mallory"
    pb = generate_messages(os.path.join(work, "gen"))
    write_pki(binary, work)
    write_configs(work)
    processes = []
    try:
        coordinator = Process([binary, "coordinator", "--config", "coordinator.toml"], work, "coordinator")
        processes.append(coordinator)
        if not coordinator.wait_for(r"with mutual TLS", 60):
            check(False, "the coordinator did not start:\n" + coordinator.output())
            return
        port = int(re.search(r"port ([0-9]+)", coordinator.output()).group(1))
        target = "127.0.0.1:%d" % port
        pid = coordinator.proc.pid
        idle_rss = vm_rss_mib(pid) or 0.0
        sampler = RssSampler(pid)

        mallory = site_stub(work, target, "mallory", bdp_probe=False)
        vandal = site_stub(work, target, "vandal")
        stranger = site_stub(work, target, "stranger")
        operator = site_stub(work, target, "operator")
        expect("register: mallory, 10 training samples", register(mallory, 10, 5), Code.OK)
        for site in HONEST:
            processes.append(Process([binary, "client", "--config",
                                      write_client_config(work, site, target)], work, site))
        task = poll_for_task(mallory)
        check(task is not None, "mallory got no task in round 1")
        if task is None:
            return
        check(task.round == 1 and task.cohort_size == 4, "mallory's task is round 1 of a cohort of 4")
        got = download_status(mallory.DownloadModel, pb.DownloadModelRequest(model_digest=task.model_digest))
        expect("download: the task's model", got, Code.OK)
        model = b"".join(c.data for c in got[2])

        vandal_done = threading.Event()

        def vandal_run():
            try:
                vandal_probes(vandal, stranger, operator)
                vandal_floods(vandal, work, target)
            except Exception:  # a probe that raised instead of answering
                check(False, "the vandal's probes raised:\n" + traceback.format_exc())
            finally:
                vandal_done.set()
        vandal_thread = threading.Thread(target=vandal_run, name="vandal", daemon=True)
        vandal_thread.start()

        mallory_bogus_uploads(mallory, task, model)
        mallory_downloads(mallory, task, model)
        mallory_abandons(mallory, task, model)
        cut_after = mallory_stalls(mallory, task, model, coordinator)
        results.append(("stalled upload and unread download cut after", "%.1f s" % cut_after))
        threading.current_thread().name = "suite"
        # Mallory now holds still; round 1 closes without it.
        check(coordinator.wait_for(r"site mallory went silent", 30), "mallory was never taken for offline")
        check(coordinator.wait_for(r"round 1/%d: 3 sites" % ROUNDS, 60),
              "round 1 did not close with the three honest sites")
        check(vandal_done.wait(120), "the vandal's probes did not finish")
        vandal_thread.join(5)
        after_rss = vm_rss_mib(pid) or float("nan")  # nan: already exited
        for site in (mallory, vandal, stranger, operator):
            site.close()

        code = None
        try:
            code = coordinator.proc.wait(120)
        except subprocess.TimeoutExpired:
            check(False, "the coordinator did not finish its rounds within 120 s")
        sampler.stop()
        check(code == 0, "the coordinator exited with %s" % code)
        check(coordinator.count(r"finished %d rounds" % ROUNDS) == 1, "the coordinator did not finish %d rounds" % ROUNDS)
        for n in range(1, ROUNDS + 1):
            check(coordinator.count(r"round %d/%d: 3 sites" % (n, ROUNDS)) == 1,
                  "round %d did not close with 3 sites" % n)
        check(coordinator.count(r"\(failed\)") == 0, "a round failed")
        for p in processes[1:]:  # the honest sites serve until stopped; SIGTERM ends them cleanly
            p.proc.terminate()
            try:
                check(p.proc.wait(30) == 0, "%s exited with %s" % (p.name, p.proc.returncode))
            except subprocess.TimeoutExpired:
                check(False, "%s did not stop within 30 s of SIGTERM" % p.name)
        rounds = rounds_in_state(work)
        results.append(("rounds in the state", str(rounds)))
        check([r[0] for r in rounds] == list(range(1, ROUNDS + 1)) and
              all(r[1] == 1 and r[3] == HONEST for r in rounds),
              "every round succeeded with the three honest sites: %s" % rounds)
        results.append(("coordinator VmRSS", "idle %.1f MiB, after the probes %.1f MiB (+%.1f; bound +%d), "
                        "peak %.1f MiB (+%.1f; bound +%d)" % (
                            idle_rss, after_rss, after_rss - idle_rss, RSS_RETAINED_BOUND_MIB,
                            sampler.peak, sampler.peak - idle_rss, RSS_PEAK_BOUND_MIB)))
        check(not after_rss - idle_rss > RSS_RETAINED_BOUND_MIB,
              "the coordinator's RSS after the probes is %.1f MiB over idle (bound %d MiB)"
              % (after_rss - idle_rss, RSS_RETAINED_BOUND_MIB))
        check(sampler.peak - idle_rss <= RSS_PEAK_BOUND_MIB,
              "the coordinator's peak RSS is %.1f MiB over idle (bound %d MiB)"
              % (sampler.peak - idle_rss, RSS_PEAK_BOUND_MIB))
        # Peer text reaches the log escaped and cut short (a 1 MiB
        # client_version, 2 MiB of metric names, task ids with newlines),
        # and floods of refusals are coalesced.
        log_lines = coordinator.output().splitlines()
        longest = max(len(line) for line in log_lines)
        results.append(("coordinator log", "%d lines, the longest %d bytes" % (len(log_lines), longest)))
        check("\x1b" not in coordinator.output(), "an escape sequence reached the coordinator's log")
        long_lines = [line for line in log_lines if len(line) > 4096]
        check(all("ignored metrics of" in line for line in long_lines),
              "coordinator log lines over 4 KiB: %s" % [line[:200] for line in long_lines])
        check(not long_lines, "%d coordinator log lines over 4 KiB, up to %d bytes, from unknown "
              "metric names" % (len(long_lines), longest), defect="unbounded-unknown-metrics-log-line")
        check(len(log_lines) <= 400, "the coordinator logged %d lines" % len(log_lines))
    finally:
        for p in reversed(processes):
            p.stop()
        if failures:
            for p in processes:
                sys.stderr.write("---- %s output (last 80 lines)\n" % p.name)
                sys.stderr.write("".join(line[:500] + ("...\n" if len(line) > 500 else "")
                                         for line in p.lines[-80:]))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="samverka_hostile_")
    try:
        run(binary, work)
    except Exception:
        check(False, "the suite raised:\n" + traceback.format_exc())
    finally:
        for probe, status in results:
            print("%-70s %s" % (probe, status))
        for defect, what in skipped:
            print("SKIPPED, known coordinator defect %s: %s" % (defect, what))
        print("%d probes, %d failures, %d skipped on known defects, %.1f s" % (
            len(results), len(failures), len(skipped), time.monotonic() - started))
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
