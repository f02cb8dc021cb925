#!/usr/bin/env python3
"""assetpub benchmark: assetpub against aws s3 sync, rclone sync (with
--checksum and with its default size/modtime check) and s3cmd sync, on the
same generated site and the same S3 server (a single-node Garage behind
bench/countproxy.py), in one run.

Usually started through bench/run, which installs what is missing and builds
assetpub first. Results go to bench/results/latest.{md,json}; every command's
output to bench/work/logs/.

Scenarios, each tool in its own buckets:
  1 cold      publish into an empty bucket
  2 noop      publish again, nothing changed
  3 changed   PCT% of the files rewritten (a new set for every run)
  4 plan      plan / dry run on an unchanged tree
  5 fresh     a fresh runner after another machine published: same content,
              every mtime new (as after a checkout), no assetpub state DB
  6 big-noop  no-op publish of the large tree (100,000 files)
  7 fresh-change  a fresh runner (no state DB, every mtime new) publishing a
              one-file change to a target another machine published
 11-13, 17    scenarios 1, 2, 3 and 7 again through a second counting proxy
              that holds every request --latency-ms (25) ms, as a CI runner's
              round trips to S3 do, every tool at concurrency 32
Plus: the cold publish once more straight to Garage, past the proxy, with
requests read from Garage's own /metrics; a whole `assetpub plan` from a new
state DB against b3sum over all cores; assetpub's sequential phases (its
`--json` timings and the request timeline); upload throughput in scenario 1;
a large text file: one 5 MB minified stylesheet with 20,000 url()s, whose
`plan` and cold publish are set against the `brotli` command-line tool at
the same quality (11, 4 MiB window) on the same file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KEY_ID = "GK" + "b3a55e7b" * 3  # 24 hex after GK
SECRET = "5ec0e7" + "a1b2c3d4" * 7 + "9f"  # 64 hex
assert len(KEY_ID) == 26 and len(SECRET) == 64
CONCURRENCY = 32

SCENARIOS = {
    1: ("cold", "Cold publish into an empty bucket"),
    2: ("noop", "No-op republish (nothing changed)"),
    3: ("changed", "Republish with {pct}% of files changed"),
    4: ("plan", "Plan only / dry run on an unchanged tree"),
    5: ("fresh", "Fresh runner after another machine published (no state DB, same content)"),
    6: ("big-noop", "No-op republish of the large tree ({big_files:,} files)"),
    7: ("fresh-change", "Fresh runner publishing a one-file change (no state DB, new mtimes, one page changed)"),
    8: ("preview", "Preview of the site after {pct}% of files changed (`publish --preview`; assetpub only)"),
    11: ("lat-cold", "Cold publish, {latency} ms per request"),
    12: ("lat-noop", "No-op republish, {latency} ms per request"),
    13: ("lat-changed", "{pct}% of files changed, {latency} ms per request"),
    17: ("lat-fresh-change", "Fresh runner, one-file change, {latency} ms per request"),
    21: ("moto-cold", "Cold publish into an empty bucket, on moto (conditional writes enforced, as on AWS S3)"),
    27: ("moto-fresh-change", "Fresh runner publishing a one-file change, on moto (conditional writes enforced)"),
}
LATENCY_BASE = {11: 1, 12: 2, 13: 3, 17: 7}
MOTO_BASE = {21: 1, 27: 7}
SAME_ROUND = (3, 7, 13, 17, 27)

TOOL_ORDER = ["assetpub", "rclone-checksum", "rclone", "aws", "s3cmd"]


def log(msg: str) -> None:
    t = time.monotonic() - START
    print("[%4d:%02d] %s" % (t // 60, t % 60, msg), flush=True)


START = time.monotonic()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_quiet(argv, env=None, check=True, timeout=120) -> str:
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (" ".join(map(str, argv)), p.returncode, p.stdout[-2000:]))
    return p.stdout


def first_line(argv, env=None) -> str:
    try:
        out = run_quiet(argv, env=env, check=False, timeout=30).strip()
        return out.splitlines()[0].strip() if out else "?"
    except (OSError, subprocess.SubprocessError) as e:
        return "unavailable (%s)" % e


def tree_stats(root: Path) -> tuple[int, int]:
    n = b = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            n += 1
            b += os.stat(os.path.join(dirpath, f)).st_size
    return n, b


def warm(root: Path) -> None:
    """Reads every file under `root` once, so the next tool finds the tree
    in the page cache, as a CI job finds the build it has just written.
    Without it the order of the tools decides who reads from disk: rclone
    drops from the cache the pages of each file it has read (its local
    backend's fadvise), so the tool after it found most of the site gone
    (33 MB of 228 MB resident) and read it from disk before its first
    upload."""
    subprocess.run("find . -type f -print0 | xargs -0 -r cat > /dev/null", shell=True, cwd=str(root), check=False)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000
    return str(n)


def human_secs(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 10:
        return "%.2f s" % s
    if s < 100:
        return "%.1f s" % s
    return "%.0f s" % s


# ---------------------------------------------------------------------------
# Server: Garage + counting proxy


def stop_server(proc) -> None:
    """Stops a server started in a session of its own: SIGTERM to its
    process group, SIGKILL after 10 s."""
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Garage:
    def __init__(self, work: Path, binary: str, db_engine: str = "lmdb"):
        self.dir = work / "garage"
        self.binary = binary
        self.db_engine = db_engine
        self.proc = None

    def start(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "meta").mkdir(parents=True)
        (self.dir / "data").mkdir()
        self.rpc_port = free_port()
        self.s3_port = free_port()
        self.admin_port = free_port()
        self.metrics_token = secrets.token_hex(16)
        self.cfg = self.dir / "garage.toml"
        self.cfg.write_text(
            f'metadata_dir = "{self.dir}/meta"\n'
            f'data_dir = "{self.dir}/data"\n'
            f'db_engine = "{self.db_engine}"\n'
            "replication_factor = 1\n"
            'compression_level = "none"\n'
            f'rpc_bind_addr = "127.0.0.1:{self.rpc_port}"\n'
            f'rpc_public_addr = "127.0.0.1:{self.rpc_port}"\n'
            f'rpc_secret = "{secrets.token_hex(32)}"\n'
            "\n[s3_api]\n"
            's3_region = "garage"\n'
            f'api_bind_addr = "127.0.0.1:{self.s3_port}"\n'
            'root_domain = ".s3.garage.localhost"\n'
            "\n[admin]\n"
            f'api_bind_addr = "127.0.0.1:{self.admin_port}"\n'
            f'metrics_token = "{self.metrics_token}"\n'
        )
        env = dict(os.environ, RUST_LOG="warn")
        self.log = open(self.dir / "server.log", "w")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.cfg), "server"], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        deadline = time.monotonic() + 30
        node = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("garage exited at start; see %s" % (self.dir / "server.log"))
            p = subprocess.run([self.binary, "-c", str(self.cfg), "node", "id", "-q"], capture_output=True, text=True)
            if p.returncode == 0 and "@" in p.stdout:
                node = p.stdout.strip().split("@")[0]
                break
            time.sleep(0.3)
        if not node:
            raise RuntimeError("garage did not come up; see %s" % (self.dir / "server.log"))
        # `node id` answers from the key on disk; the RPC port may take a
        # moment longer on a busy machine.
        while True:
            try:
                self.cli("layout", "assign", "-z", "dc1", "-c", "100G", node[:16])
                break
            except RuntimeError:
                if self.proc.poll() is not None or time.monotonic() > deadline + 30:
                    raise
                time.sleep(0.5)
        self.cli("layout", "apply", "--version", "1")
        self.cli("key", "import", "--yes", KEY_ID, SECRET, "-n", "bench")
        # The S3 port answers once the layout is in place.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.s3_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)

    def cli(self, *args) -> str:
        return run_quiet([self.binary, "-c", str(self.cfg), *args])

    def s3_requests(self) -> dict | None:
        """Garage's own count of S3 API requests so far, by API endpoint
        (`api_s3_request_counter` on the admin API's /metrics)."""
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.admin_port,
                                     headers={"Authorization": "Bearer " + self.metrics_token})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as r:
                text = r.read().decode()
        except Exception:  # noqa: BLE001 - the cross-check is optional
            return None
        out: dict = {}
        for ln in text.splitlines():
            if ln.startswith("api_s3_request_counter{"):
                m = re.search(r'api_endpoint="([^"]+)"', ln)
                if m:
                    out[m.group(1)] = out.get(m.group(1), 0) + int(float(ln.rsplit(" ", 1)[1]))
        return out

    @staticmethod
    def delta(before: dict | None, after: dict | None) -> dict | None:
        if before is None or after is None:
            return None
        d = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        return {"requests": sum(d.values()), "endpoints": dict(sorted(d.items()))}

    def bucket(self, name: str) -> str:
        self.cli("bucket", "create", name)
        self.cli("bucket", "allow", "--read", "--write", "--owner", name, "--key", "bench")
        return name

    def stop(self) -> None:
        stop_server(self.proc)


class Moto:
    """moto_server on 127.0.0.1: AWS's semantics for conditional writes
    (`If-None-Match`/`If-Match` answered with 412), which Garage ignores.
    It takes any credentials."""

    def __init__(self, work: Path, binary: str):
        self.dir = work / "moto"
        self.binary = binary
        self.proc = None

    def start(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.s3_port = free_port()
        self.log = open(self.dir / "server.log", "w")
        self.proc = subprocess.Popen([self.binary, "-H", "127.0.0.1", "-p", str(self.s3_port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited at start; see %s" % (self.dir / "server.log"))
            try:
                self._request("GET", "/")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("moto_server did not come up; see %s" % (self.dir / "server.log"))

    def _request(self, method: str, path: str) -> None:
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.s3_port, path), method=method,
                                     data=b"" if method == "PUT" else None)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            r.read()

    def bucket(self, name: str) -> str:
        self._request("PUT", "/%s" % name)
        return name

    def stop(self) -> None:
        stop_server(self.proc)


class CountProxy:
    def __init__(self, work: Path, upstream_port: int, log_requests: bool, latency_ms: float = 0, name: str = "proxy"):
        self.work = work
        self.upstream_port = upstream_port
        self.log_requests = log_requests
        self.latency_ms = latency_ms
        self.name = name
        self.proc = None

    def start(self) -> None:
        ready = self.work / ("%s.ready.json" % self.name)
        if ready.exists():
            ready.unlink()
        argv = [sys.executable, str(HERE / "countproxy.py"), "--upstream", "127.0.0.1:%d" % self.upstream_port,
                "--ready-file", str(ready)]
        if self.latency_ms:
            argv += ["--latency-ms", str(self.latency_ms)]
        if self.log_requests:
            argv += ["--log", str(self.work / "logs" / ("%s-requests.tsv" % self.name))]
        self.out = open(self.work / "logs" / ("%s.log" % self.name), "w")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the counting proxy did not start; see %s" % (self.work / "logs" / "proxy.log"))
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.port = info["listen"]
        self.control = info["control"]
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def _call(self, method: str, path: str):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.control, path), method=method,
                                     data=b"" if method == "POST" else None)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            return json.loads(r.read())

    def counts(self) -> dict:
        return self._call("GET", "/counts")

    def reset(self) -> dict:
        return self._call("POST", "/reset")

    def timeline(self) -> list:
        return self._call("GET", "/timeline")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self._call("POST", "/quit")
                self.proc.wait(5)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait()


# ---------------------------------------------------------------------------
# Running one command


class Runner:
    def __init__(self, work: Path, proxy: CountProxy | None, garage: "Garage | None" = None):
        self.work = work
        self.proxy = proxy
        self.garage = garage
        self.logs = work / "logs"
        self.seq = 0

    def run(self, name: str, argv: list[str], env: dict, cap: float | None, timeline: bool = False) -> dict:
        """Run argv under /usr/bin/time -v with the proxy counters reset;
        returns wall time, exit code, peak RSS, request counts, output files."""
        self.seq += 1
        base = self.logs / ("%03d-%s" % (self.seq, re.sub(r"[^A-Za-z0-9_.-]+", "_", name)))
        out_path, err_path, time_path = Path(str(base) + ".out"), Path(str(base) + ".err"), Path(str(base) + ".time")
        with open(str(base) + ".cmd", "w") as f:
            f.write(" ".join(argv) + "\n")
        if self.proxy:
            self.proxy.reset()
        g0 = self.garage.s3_requests() if self.garage else None
        stopped = threading.Event()

        def stop(p: subprocess.Popen) -> None:
            stopped.set()
            for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    return
                if grace is None:
                    return
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    if p.poll() is not None:
                        return
                    time.sleep(0.1)

        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.monotonic()
            p = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(time_path)] + argv, stdout=out, stderr=err, env=env,
                                 start_new_session=True, stdin=subprocess.DEVNULL)
            # A blocking wait, with the cap enforced from a timer thread:
            # Popen.wait(timeout=...) polls with sleeps of up to 50 ms,
            # which would add up to 50 ms to every short run.
            timer = threading.Timer(cap, stop, args=(p,)) if cap else None
            if timer:
                timer.daemon = True
                timer.start()
            rc = p.wait()
            wall = time.monotonic() - t0
            if timer:
                timer.cancel()
        capped = stopped.is_set()
        if capped:
            rc = None
        tl = self.proxy.timeline() if (self.proxy and timeline) else None
        counts = self.proxy.reset() if self.proxy else {}
        garage = Garage.delta(g0, self.garage.s3_requests()) if self.garage else None
        rss = None
        try:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_path.read_text())
            rss = int(m.group(1)) if m else None
        except OSError:
            pass
        return {"wall_s": round(wall, 3), "exit": rc, "capped": capped, "cap_s": cap if capped else None,
                "peak_rss_kb": rss, "requests": counts, "garage_requests": garage, "timeline": tl,
                "loadavg_before": None, "stdout": str(out_path), "stderr": str(err_path)}


def tail(path: str, n: int = 6) -> str:
    """The gist of a failed command's output: a Rust panic message, else the
    first error line, else the last lines."""
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    lines = [ln for ln in lines if ln.strip()]
    for i, ln in enumerate(lines):
        if "panicked at" in ln:
            return ("panic: " + " ".join(x.strip() for x in lines[i:i + 2]))[:600]
    for i, ln in enumerate(lines):
        if re.match(r"\s*(error|Error|ERROR)\b", ln):
            return " | ".join(x.strip() for x in lines[i:i + 3])[:600]
    return " | ".join(lines[-n:])[-600:]


# ---------------------------------------------------------------------------
# Tools


class Tool:
    key = ""
    label = ""
    settings = ""

    def __init__(self, ctx: "Bench"):
        self.ctx = ctx

    def available(self) -> str | None:
        return None

    def prepare(self, bucket: str, site: Path, fresh_state: bool = False) -> None:
        pass

    def sync(self, bucket: str, site: Path, dry_run: bool = False) -> tuple[list[str], dict]:
        raise NotImplementedError

    def na(self, scenario: int) -> str | None:
        if scenario == 8:
            return "no preview deploys: a preview would be a sync of the whole tree to another prefix"
        return None

    def forget_state(self, bucket: str) -> None:
        pass

    def version(self) -> str:
        return "?"


class Assetpub(Tool):
    key = "assetpub"
    label = "assetpub"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.file_mode = ctx.args.assetpub_target == "file"
        if self.file_mode:
            self.label = "assetpub (file://)"
        self.settings = "`concurrency = %d`, path-style endpoint; state DB per bucket" % CONCURRENCY
        self.dir = ctx.work / "assetpub"
        self.dir.mkdir(exist_ok=True)

    def available(self):
        b = self.ctx.args.assetpub
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            return "no binary at %s (cargo build --release failed or was skipped)" % b
        return None

    def version(self):
        return first_line([self.ctx.args.assetpub, "--version"])

    def config(self, bucket: str, site: Path, endpoint: str | None = None) -> Path:
        path = self.dir / ("%s.toml" % bucket)
        if self.file_mode:
            target = '[target]\nurl = "file://%s"\n' % (self.dir / ("%s.target" % bucket))
        else:
            target = ('[target]\nurl = "s3://%s"\nendpoint = "%s"\npath_style = true\nregion = "garage"\nconcurrency = %d\n'
                      % (bucket, endpoint or self.ctx.endpoint, CONCURRENCY))
        path.write_text('[source]\ndirs = ["%s"]\n\n%s' % (site, target))
        return path

    def state(self, bucket: str) -> Path:
        return self.dir / ("%s.db" % bucket)

    def forget_state(self, bucket: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal", "-verified"):
            p = Path(str(self.state(bucket)) + suffix)
            if p.exists():
                p.unlink()

    def prepare(self, bucket, site, fresh_state=False):
        self.config(bucket, site)
        if fresh_state:
            self.forget_state(bucket)

    def na(self, scenario: int) -> str | None:
        if scenario == 8 and self.file_mode:
            return "previews need an S3 target"
        return None

    def sync(self, bucket, site, dry_run=False, preview=None):
        cfg = self.config(bucket, site)
        argv = [self.ctx.args.assetpub, "--config", str(cfg), "--state", str(self.state(bucket)), "--json"]
        argv += ["plan"] if dry_run else ["publish"]
        if preview:
            argv += ["--preview", preview]
        return argv, self.ctx.aws_env()


class Aws(Tool):
    key = "aws"
    label = "aws s3 sync"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.settings = ("`max_concurrent_requests = %d`, `max_queue_size = 10000`, path-style, "
                         "`--only-show-errors --no-progress`" % CONCURRENCY)
        self.binary = ctx.which_aws()

    def available(self):
        return None if self.binary else "aws not found"

    def version(self):
        return first_line([self.binary, "--version"], env=self.ctx.aws_env())

    def sync(self, bucket, site, dry_run=False):
        argv = [self.binary, "--endpoint-url", self.ctx.endpoint, "s3", "sync", "--no-progress"]
        argv += ["--dryrun"] if dry_run else ["--only-show-errors"]
        argv += [str(site), "s3://%s/" % bucket]
        return argv, self.ctx.aws_env()


class Rclone(Tool):
    def __init__(self, ctx, checksum: bool):
        super().__init__(ctx)
        self.checksum = checksum
        self.key = "rclone-checksum" if checksum else "rclone"
        self.label = "rclone sync --checksum" if checksum else "rclone sync (size+modtime)"
        self.flags = ["--transfers", str(CONCURRENCY), "--checkers", str(CONCURRENCY), "--fast-list",
                      "--s3-no-check-bucket", "--s3-no-head", "--s3-upload-concurrency", str(CONCURRENCY)]
        if checksum:
            self.flags.append("--checksum")
        self.settings = "`%s`" % " ".join(self.flags)

    def available(self):
        return None if shutil.which("rclone") else "rclone not found"

    def version(self):
        return first_line(["rclone", "version"], env=self.ctx.rclone_env())

    def sync(self, bucket, site, dry_run=False):
        argv = ["rclone", "sync"] + self.flags + ["--stats", "0"]
        if dry_run:
            argv.append("--dry-run")
        argv += [str(site), "%s:%s" % (self.ctx.rclone_remote, bucket)]
        return argv, self.ctx.rclone_env()


class S3cmd(Tool):
    key = "s3cmd"
    label = "s3cmd sync"
    settings = "`--no-mime-magic --no-progress` (no concurrency setting: one request at a time)"

    def available(self):
        return None if shutil.which("s3cmd") else "s3cmd not found"

    def version(self):
        return first_line(["s3cmd", "--version"], env=self.ctx.tool_env())

    def sync(self, bucket, site, dry_run=False):
        argv = ["s3cmd", "-c", str(self.ctx.s3cfg), "sync", "--no-progress", "--no-mime-magic"]
        if dry_run:
            argv.append("--dry-run")
        argv += [str(site) + "/", "s3://%s/" % bucket]
        return argv, self.ctx.tool_env()


# ---------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = HERE / "work"
        self.results_dir = HERE / "results"
        self.results_dir.mkdir(exist_ok=True)
        self.work.mkdir(exist_ok=True)
        logs = self.work / "logs"
        if logs.exists():
            shutil.rmtree(logs)
        logs.mkdir()
        for d in ("assetpub", "home", "tmp"):
            p = self.work / d
            if p.exists():
                shutil.rmtree(p)
            p.mkdir()
        (self.work / "home" / "empty-credentials").write_text("")
        self.endpoint = ""
        self.results: dict = {"scenarios": {}, "notes": []}

    # -- environments: never the user's home config ------------------------

    def tool_env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "RCLONE_")) and k not in ("S3CMD_CONFIG",)}
        env["HOME"] = str(self.work / "home")
        env["TMPDIR"] = str(self.work / "tmp")
        env["PATH"] = os.environ.get("PATH", "")
        return env

    def aws_env(self) -> dict:
        env = self.tool_env()
        env.update({
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_CONFIG_FILE": str(self.aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "home" / "empty-credentials"),
            "AWS_DEFAULT_REGION": "garage",
            "AWS_REGION": "garage",
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        if os.environ.get("AWS_CA_BUNDLE"):
            env["AWS_CA_BUNDLE"] = os.environ["AWS_CA_BUNDLE"]
        return env

    def rclone_env(self) -> dict:
        env = self.tool_env()  # without AWS_CA_BUNDLE: rclone 1.60 refuses to start with it
        env["RCLONE_CONFIG"] = str(self.rclone_config)
        return env

    def which_aws(self) -> str | None:
        path = shutil.which("aws")
        if path and "/shims/" in path and shutil.which("pyenv"):
            p = subprocess.run(["pyenv", "which", "aws"], capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip()
        return path

    def write_tool_configs(self) -> None:
        self.aws_config = self.work / "aws.config"
        self.aws_config.write_text(
            "[default]\nregion = garage\ns3 =\n"
            "  max_concurrent_requests = %d\n  max_queue_size = 10000\n  addressing_style = path\n" % CONCURRENCY)
        self.rclone_config = self.work / "rclone.conf"
        self.remotes = {"proxy": self.endpoint, "direct": "http://127.0.0.1:%d" % self.garage.s3_port}
        self.write_rclone_config()
        self.s3cfgs = {}
        for name, ep in self.remotes.items():
            self.s3cfgs[name] = self.work / ("s3cfg-%s" % name)
            hp = ep.split("://", 1)[1]
            self.s3cfgs[name].write_text(
                "[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\n"
                "bucket_location = garage\nsignature_v2 = False\ncheck_ssl_certificate = False\n" % (KEY_ID, SECRET, hp, hp))
        self.s3cfg = self.s3cfgs["proxy"]
        self.rclone_remote = "proxy"

    def write_rclone_config(self) -> None:
        remote = ("type = s3\nprovider = Other\naccess_key_id = %s\nsecret_access_key = %s\nregion = garage\n"
                  "force_path_style = true\nno_check_bucket = true\n" % (KEY_ID, SECRET))
        self.rclone_config.write_text("".join("[%s]\n%sendpoint = %s\n\n" % (name, remote, ep)
                                              for name, ep in self.remotes.items()))

    def add_remote(self, name: str, endpoint: str) -> None:
        self.remotes[name] = endpoint
        self.write_rclone_config()
        self.s3cfgs[name] = self.work / ("s3cfg-%s" % name)
        hp = endpoint.split("://", 1)[1]
        self.s3cfgs[name].write_text(
            "[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\n"
            "bucket_location = garage\nsignature_v2 = False\ncheck_ssl_certificate = False\n" % (KEY_ID, SECRET, hp, hp))

    def via(self, name: str, runner: "Runner", server=None, size_remote: str = "direct") -> None:
        """Point every tool at one of the endpoints: "proxy" (the counting
        proxy), "lat" (the proxy that delays every request), "direct"
        (Garage itself) or "moto" (the counting proxy in front of moto),
        and measure through `runner`. `server` makes the buckets (Garage
        by default); `size_remote` is the rclone remote that reads a
        bucket's size past any proxy."""
        self.endpoint = self.remotes[name]
        self.rclone_remote = name
        self.s3cfg = self.s3cfgs.get(name, self.s3cfgs["proxy"])
        self.runner = runner
        self.server = server or self.garage
        self.size_remote = size_remote

    def bucket_size(self, bucket: str) -> dict | None:
        """Objects and bytes in a bucket, read directly from Garage (not counted)."""
        if self.tools.get("assetpub") and self.tools["assetpub"].file_mode and bucket.startswith("ap-"):
            n, b = tree_stats(self.work / "assetpub" / ("%s.target" % bucket))
            return {"count": n, "bytes": b}
        try:
            out = run_quiet(["rclone", "size", "--fast-list", "--json", "%s:%s" % (getattr(self, "size_remote", "direct"), bucket)],
                            env=self.rclone_env(), timeout=300)
            return json.loads(out.strip().splitlines()[-1])
        except Exception as e:  # noqa: BLE001 - informational only
            return {"error": str(e)[:200]}

    # -- site ---------------------------------------------------------------

    def gen(self, files: int, out: Path, reuse: bool = False) -> dict:
        argv = [sys.executable, str(HERE / "gen_site.py"), "--files", str(files), "--seed", str(self.args.seed), "--json", str(out)]
        if reuse:
            argv.append("--reuse")
        return json.loads(run_quiet(argv, timeout=1800).strip().splitlines()[-1])

    def mutate(self, out: Path, files: int, rnd: int) -> dict:
        argv = [sys.executable, str(HERE / "gen_site.py"), "--files", str(files), "--seed", str(self.args.seed), "--json",
                "--mutate", str(self.args.change_pct), "--round", str(rnd), str(out)]
        res = json.loads(run_quiet(argv, timeout=600).strip().splitlines()[-1])
        res.pop("paths", None)
        return res

    @staticmethod
    def touch_all(root: Path) -> None:
        now = time.time()
        for dirpath, _, files in os.walk(root):
            for f in files:
                os.utime(os.path.join(dirpath, f), (now, now))

    # -- results ------------------------------------------------------------

    def record(self, sid: int, tool: Tool, run: dict | None, status: str | None = None, reason: str | None = None, extra: dict | None = None) -> None:
        sc = self.results["scenarios"].setdefault(str(sid), {"tools": {}})
        t = sc["tools"].setdefault(tool.key, {"label": tool.label, "runs": []})
        if run is not None:
            if run.get("capped"):
                run["status"] = "capped"
            elif run.get("exit") != 0:
                run["status"] = "failed"
                run["error"] = tail(run["stderr"]) or tail(run["stdout"])
            else:
                run["status"] = "ok"
            if tool.key == "assetpub" and run["status"] == "ok":
                run["assetpub"] = parse_assetpub_json(run["stdout"])
                run["phases"] = assetpub_phases(run["stdout"], run.get("timeline"))
            run.pop("timeline", None)
            if extra:
                run.update(extra)
            t["runs"].append(run)
        if status:
            t["status"] = status
            t["reason"] = reason

    def measure(self, sid: int, rep: int, tool: Tool, bucket: str, site: Path, dry_run=False, cap=None, extra=None,
                preview=None) -> dict:
        argv, env = tool.sync(bucket, site, dry_run=dry_run, **({"preview": preview} if preview else {}))
        warm(site)
        load = os.getloadavg()[0]
        run = self.runner.run("s%d-r%d-%s" % (sid, rep, tool.key), argv, env, cap or self.args.cap,
                              timeline=tool.key == "assetpub")
        run["loadavg_before"] = round(load, 2)
        self.record(sid, tool, run, extra=extra)
        req = run["requests"]
        log("  s%d run %d %-16s %7s  exit %s  %s requests %s%s%s" % (
            sid, rep, tool.key, human_secs(run["wall_s"]), run["exit"], req.get("requests", 0),
            json.dumps(req.get("ops", {}), separators=(",", ":")),
            ("  garage %s" % run["garage_requests"]["requests"]) if run.get("garage_requests") else "",
            ("  CAPPED" if run["capped"] else "") + ("  " + run.get("error", "")[:200] if run["status"] == "failed" else "")))
        return run

    def should_repeat(self, sid: int, tool: Tool) -> bool:
        # Repeats are the first thing to go when the run is over its time
        # budget (half of it before the large tree, which needs the rest).
        elapsed = time.monotonic() - START
        limit = self.args.budget * (0.5 if sid != 6 and 6 in self.args.scenarios else 0.9)
        if elapsed > limit:
            if not self.results.get("budget_note"):
                self.results["budget_note"] = ("repeats skipped from scenario %d on: %.0f s elapsed, over the %.0f s "
                                               "allowed before it by --budget %d" % (sid, elapsed, limit, self.args.budget))
                log(self.results["budget_note"])
            return False
        t = self.results["scenarios"].get(str(sid), {}).get("tools", {}).get(tool.key)
        if not t or not t["runs"]:
            return True
        first = t["runs"][0]
        if first["status"] != "ok":
            return False
        if first["wall_s"] > self.args.repeat_max_secs:
            return False
        # A peer far behind the fastest one does not change assetpub's ratio
        # to the best peer: its first run stands.
        if tool.key != "assetpub" and self.args.repeat_max_ratio:
            peers = [p["runs"][0]["wall_s"] for k, p in self.results["scenarios"][str(sid)]["tools"].items()
                     if k != "assetpub" and p.get("runs") and p["runs"][0].get("status") == "ok"]
            if peers and first["wall_s"] > self.args.repeat_max_ratio * min(peers):
                return False
        return True

    # -- the scenarios ------------------------------------------------------

    def main(self) -> int:
        a = self.args
        self.results["started"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.results["loadavg_at_start"] = list(os.getloadavg())
        self.garage = Garage(self.work, a.garage, a.garage_db)
        self.proxy = None
        try:
            log("starting garage")
            self.garage.start()
            self.proxy = CountProxy(self.work, self.garage.s3_port, a.proxy_log)
            self.proxy.start()
            self.endpoint = self.proxy.endpoint
            self.write_tool_configs()
            log("garage S3 on 127.0.0.1:%d, counting proxy on %s" % (self.garage.s3_port, self.endpoint))
            self.runner = Runner(self.work, self.proxy, self.garage)
            all_tools = {"assetpub": Assetpub(self), "rclone-checksum": Rclone(self, True), "rclone": Rclone(self, False),
                         "aws": Aws(self), "s3cmd": S3cmd(self)}
            self.tools = {k: all_tools[k] for k in TOOL_ORDER if k in a.tools}
            self.machine_info()
            missing = {k: t.available() for k, t in self.tools.items() if t.available()}
            for k, why in missing.items():
                log("not running %s: %s" % (k, why))
            active = [t for k, t in self.tools.items() if k not in missing]
            self.results["missing"] = missing
            self.run_small_tree(active, missing)
            if 6 in a.scenarios:
                self.run_big_tree(active, missing)
        finally:
            if self.proxy:
                self.proxy.stop()
            self.garage.stop()
            if not a.keep_data:
                shutil.rmtree(self.garage.dir / "data", ignore_errors=True)
        self.results["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.results["elapsed_s"] = round(time.monotonic() - START, 1)
        try:
            self.summarize()
        except Exception:  # noqa: BLE001 - keep the measurements whatever happens
            import traceback
            self.results["summary_error"] = traceback.format_exc()
            log("summary failed; writing the raw results anyway:\n" + self.results["summary_error"])
        self.write_outputs()
        log("wrote %s and %s" % (self.out_md, self.out_json))
        return 0

    def run_small_tree(self, active: list[Tool], missing: dict) -> None:
        a = self.args
        sids = [s for s in a.scenarios if s != 6]
        lat_sids = [10 + s for s in a.latency_scenarios] if a.latency_ms > 0 else []
        lat_tools = [t for t in active if t.key in a.latency_tools]
        for sid in sids:
            for k, why in missing.items():
                self.record(sid, self.tools[k], None, "n/a", why)
        for sid in lat_sids:
            for t in active:
                if t.key not in a.latency_tools:
                    self.record(sid, t, None, "n/a", "not in --latency-tools" + (
                        " (s3cmd has no concurrency setting: one request at a time)" if t.key == "s3cmd" else ""))
            for k, why in missing.items():
                if k in a.latency_tools:
                    self.record(sid, self.tools[k], None, "n/a", why)
        if a.large_file:
            self.large_file_bench()
        if not sids and not lat_sids and not a.hash_bench and not a.direct_cold:
            return
        site = self.work / "sites" / ("site-%d" % a.files)
        log("generating the site: %d files, seed %d" % (a.files, a.seed))
        info = self.gen(a.files, site)
        self.results["site"] = {"files": info["files"], "bytes": info["bytes"], "seed": a.seed, "kinds": info["kinds"],
                                "path": str(site)}
        log("  %d files, %s" % (info["files"], human_bytes(info["bytes"])))
        self.pages = sorted(str(p) for p in site.rglob("*.html"))

        main_runner = self.runner
        self.run_set(active, site, {s: s for s in sids}, "seq", 0)
        if a.direct_cold and active:
            self.direct_cold(active, site)
            self.via("proxy", main_runner)
        if a.hash_bench:
            self.hash_bench(site)
        moto_sids = [20 + s for s in a.moto_scenarios]
        moto_tools = [t for t in active if t.key in a.moto_tools]
        if moto_sids and moto_tools:
            self.moto_set(moto_tools, site, moto_sids, main_runner)
        if lat_sids and lat_tools:
            self.lat_proxy = CountProxy(self.work, self.garage.s3_port, a.proxy_log, latency_ms=a.latency_ms, name="latproxy")
            self.lat_proxy.start()
            self.add_remote("lat", self.lat_proxy.endpoint)
            log("latency proxy on %s: every request held %g ms" % (self.lat_proxy.endpoint, a.latency_ms))
            self.via("lat", Runner(self.work, self.lat_proxy, self.garage))
            try:
                self.run_set(lat_tools, site, {s - 10: s for s in lat_sids}, "lat", 100)
            finally:
                self.via("proxy", main_runner)
                self.lat_proxy.stop()

    def moto_set(self, tools: list, site: Path, sids: list, main_runner: "Runner") -> None:
        """Scenarios run again on moto, whose conditional writes are
        enforced as AWS S3's are (Garage ignores them), through a counting
        proxy of their own. Recorded as 20 + the scenario's number."""
        a = self.args
        for sid in sids:
            for t in self.tools.values():
                if t.key not in [x.key for x in tools]:
                    self.record(sid, t, None, "n/a", "not in --moto-tools")
        moto = Moto(self.work, a.moto)
        proxy = None
        try:
            log("starting moto_server")
            moto.start()
            proxy = CountProxy(self.work, moto.s3_port, a.proxy_log, name="motoproxy")
            proxy.start()
            self.add_remote("moto", proxy.endpoint)
            self.add_remote("motodirect", "http://127.0.0.1:%d" % moto.s3_port)
            log("moto on 127.0.0.1:%d, counting proxy on %s" % (moto.s3_port, proxy.endpoint))
            self.via("moto", Runner(self.work, proxy, None), server=moto, size_remote="motodirect")
            # Scenario 7 publishes into the buckets scenario 1 filled: that
            # runs once either way (recorded only when asked for).
            self.run_set(tools, site, {s - 20: s for s in sids}, "moto", 200)
        finally:
            self.via("proxy", main_runner)
            if proxy:
                proxy.stop()
            moto.stop()

    @staticmethod
    def rotated(tools: list, rep: int, sid: int) -> list:
        """The tool order of one round: rotated by one place each round and
        each scenario, so no tool always goes first (or right after another's
        heavy run)."""
        if not tools:
            return tools
        k = (rep - 1 + sid) % len(tools)
        return tools[k:] + tools[:k]

    def scenario_start(self, sid: int) -> None:
        load = os.getloadavg()
        cores = os.cpu_count() or 1
        sc = self.results["scenarios"].setdefault(str(sid), {"tools": {}})
        sc["loadavg_before"] = [round(x, 2) for x in load]
        sc["under_load"] = load[0] > cores
        name = SCENARIOS[sid][1].format(pct=self.args.change_pct, latency=("%g" % self.args.latency_ms),
                                        big_files=self.args.big_files)
        log("scenario %d: %s (load %.2f %.2f %.2f%s)" % (sid, name, load[0], load[1], load[2],
                                                       ", above the %d cores" % cores if load[0] > cores else ""))

    def change_one_page(self, rnd: int) -> str:
        """Append a comment to one page (a stable key): a one-file change
        that every tool sees (its size changes too)."""
        page = self.pages[(rnd * 7919) % len(self.pages)]
        with open(page, "a") as f:
            f.write("<!-- one-file change, round %d -->\n" % rnd)
        return page

    def run_set(self, active: list[Tool], site: Path, sid_of: dict, tag: str, round_base: int) -> None:
        """One set of scenarios: base scenario number -> the number it is
        recorded under (the same for the plain set, +10 for the latency set)."""
        a = self.args
        runs = a.runs
        pre = "" if tag == "seq" else tag
        server = getattr(self, "server", None) or self.garage
        buckets = {t.key: server.bucket("%s-%s" % (short(t.key), tag)) for t in active}

        if sid_of:
            sid = sid_of.get(1, {"seq": 1, "lat": 11, "moto": 21}[tag])
            self.scenario_start(sid)
            for rep in range(1, runs + 1 if 1 in sid_of else 2):
                for t in self.rotated(active, rep, sid):
                    if rep > 1 and not self.should_repeat(sid, t):
                        continue
                    bucket = buckets[t.key] if rep == 1 else server.bucket("%s-%scold%d" % (short(t.key), pre, rep))
                    t.prepare(bucket, site, fresh_state=True)
                    self.measure(sid, rep, t, bucket, site)
            for t in active:
                sc = self.results["scenarios"][str(sid)]["tools"][t.key]
                sc["bucket_after"] = self.bucket_size(buckets[t.key])
            if 1 not in sid_of:
                self.results["scenarios"].pop(str(sid), None)

        if 2 in sid_of:
            sid = sid_of[2]
            self.scenario_start(sid)
            # One unmeasured republish first: assetpub's first one after
            # publishing just-written files re-hashes those written within
            # 2 s of that publish (the timestamp-granularity rule) and then
            # remembers the tree; the measured runs are the steady state.
            warm = self.results["scenarios"][str(sid)].setdefault("warmup", {})
            for t in self.rotated(active, 1, sid):
                argv, env = t.sync(buckets[t.key], site)
                r = self.runner.run("s%d-warmup-%s" % (sid, t.key), argv, env, a.cap)
                warm[t.key] = {"label": t.label, "wall_s": r["wall_s"], "exit": r["exit"],
                               "requests": r["requests"].get("requests", 0)}
                log("  s%d warm-up %-16s %7s  exit %s  %s requests" % (sid, t.key, human_secs(r["wall_s"]), r["exit"],
                                                                      r["requests"].get("requests", 0)))
            for rep in range(1, runs + 1):
                for t in self.rotated(active, rep, sid):
                    if rep > 1 and not self.should_repeat(sid, t):
                        continue
                    self.measure(sid, rep, t, buckets[t.key], site)

        if 4 in sid_of:
            sid = sid_of[4]
            self.scenario_start(sid)
            for rep in range(1, runs + 1):
                for t in self.rotated(active, rep, sid):
                    if rep > 1 and not self.should_repeat(sid, t):
                        continue
                    reason = t.na(4)
                    if reason:
                        self.record(sid, t, None, "n/a", reason)
                        continue
                    self.measure(sid, rep, t, buckets[t.key], site, dry_run=True)

        if 3 in sid_of:
            sid = sid_of[3]
            self.scenario_start(sid)
            for rep in range(1, runs + 1):
                rnd = round_base + rep
                m = self.mutate(site, a.files, rnd)
                log("  round %d: %d files rewritten (%s)" % (rnd, m["mutated"], human_bytes(m["bytes"])))
                # Every tool syncs every round (later scenarios need the
                # buckets to match the tree), and every tool's reported row
                # comes from the same round (see summarize).
                for t in self.rotated(active, rep, sid):
                    self.measure(sid, rep, t, buckets[t.key], site,
                                 extra={"round": rnd, "mutated_files": m["mutated"], "mutated_bytes": m["bytes"]})

        if 5 in sid_of:
            sid = sid_of[5]
            self.scenario_start(sid)
            for rep in range(1, runs + 1):
                if a.fresh_mtimes == "now":
                    self.touch_all(site)
                for t in self.rotated(active, rep, sid):
                    if rep > 1 and not self.should_repeat(sid, t):
                        continue
                    t.forget_state(buckets[t.key])
                    self.measure(sid, rep, t, buckets[t.key], site)

        if 7 in sid_of:
            sid = sid_of[7]
            self.scenario_start(sid)
            for rep in range(1, runs + 1):
                rnd = round_base + rep
                page = self.change_one_page(rnd)
                self.touch_all(site)
                log("  round %d: changed %s; every mtime set to now" % (rnd, os.path.relpath(page, site)))
                for t in self.rotated(active, rep, sid):
                    if rep > 1 and not self.should_repeat(sid, t):
                        continue
                    t.forget_state(buckets[t.key])
                    self.measure(sid, rep, t, buckets[t.key], site,
                                 extra={"round": rnd, "changed_page": os.path.relpath(page, site)})

        if 8 in sid_of:
            # Last: the live buckets no longer match the tree afterwards.
            # Each round changes the tree and publishes it as a new preview
            # of the live site: only the changed files' bytes should go out,
            # the rest copied server-side from the live site's objects.
            sid = sid_of[8]
            self.scenario_start(sid)
            for rep in range(1, runs + 1):
                rnd = round_base + 50 + rep
                m = self.mutate(site, a.files, rnd)
                log("  round %d: %d files rewritten (%s)" % (rnd, m["mutated"], human_bytes(m["bytes"])))
                for t in self.rotated(active, rep, sid):
                    reason = t.na(8)
                    if reason:
                        self.record(sid, t, None, "n/a", reason)
                        continue
                    self.measure(sid, rep, t, buckets[t.key], site, preview="bench-%d" % rnd,
                                 extra={"round": rnd, "mutated_files": m["mutated"], "mutated_bytes": m["bytes"]})

    def direct_cold(self, active: list[Tool], site: Path) -> None:
        """The cold publish once more, straight to Garage (no proxy), with
        the requests read from Garage's own counters: shows whether the
        Python proxy holds the tools back."""
        a = self.args
        s1 = self.results["scenarios"].get("1", {}).get("tools", {})
        walls = {k: t["runs"][0]["wall_s"] for k, t in s1.items() if t.get("runs") and t["runs"][0].get("status") == "ok"}
        fastest = min(walls.values()) if walls else None
        tools = [t for t in active if not (fastest and a.repeat_max_ratio and walls.get(t.key, 0) > a.repeat_max_ratio * fastest)]
        skipped = [t.label for t in active if t not in tools]
        res = self.results.setdefault("direct_cold", {"tools": {}, "skipped": skipped})
        load = os.getloadavg()
        res["loadavg_before"] = [round(x, 2) for x in load]
        log("cold publish straight to Garage, requests from its /metrics (load %.2f)%s" % (
            load[0], ("; not run for %s (over %g× the fastest proxied cold run)" % (", ".join(skipped), a.repeat_max_ratio)) if skipped else ""))
        self.via("direct", Runner(self.work, None, self.garage))
        for t in self.rotated(tools, 1, 21):
            bucket = self.garage.bucket("%s-direct" % short(t.key))
            t.prepare(bucket, site, fresh_state=True)
            argv, env = t.sync(bucket, site)
            warm(site)
            r = self.runner.run("direct-cold-%s" % t.key, argv, env, a.cap)
            r.pop("timeline", None)
            r["status"] = "ok" if r["exit"] == 0 else ("capped" if r["capped"] else "failed")
            if t.key == "assetpub" and r["status"] == "ok":
                r["assetpub"] = parse_assetpub_json(r["stdout"])
            res["tools"][t.key] = {"label": t.label, **r}
            log("  direct %-16s %7s  exit %s  garage counted %s" % (
                t.key, human_secs(r["wall_s"]), r["exit"], json.dumps(r.get("garage_requests"), separators=(",", ":"))))

    def large_file_bench(self) -> None:
        """One 5 MB minified stylesheet with 20,000 url()s to 200 images:
        `assetpub plan` from a new state DB and a cold `assetpub publish`
        (through the counting proxy), each a whole process, against the
        `brotli` tool compressing the same file at the same quality (11) and
        window (22), the order rotated every round. Brotli at quality 11 is
        what a large text file costs: the rest is seconds' fraction."""
        a = self.args
        site = self.work / "sites" / "large-css"
        css = site / "css" / "big.css"
        if not css.exists():
            import random
            rnd = random.Random(a.seed)
            (site / "img").mkdir(parents=True, exist_ok=True)
            (site / "css").mkdir(parents=True, exist_ok=True)
            for i in range(200):
                (site / "img" / ("i%d.png" % i)).write_bytes(rnd.randbytes(600 + i))
            rules, size, urls = [], 0, 0
            while urls < 20_000:
                rule = (".c%d{margin:%dpx %dpx;padding:%dpx;color:#%06x;border:1px solid #%06x;font:%dpx/1.4 sans-serif;"
                        "transition:opacity .%ds ease-in-out,transform .%ds;background:url(../img/i%d.png) no-repeat}"
                        % (urls, rnd.randint(0, 40), rnd.randint(0, 40), rnd.randint(0, 30), rnd.getrandbits(24),
                           rnd.getrandbits(24), rnd.randint(10, 30), rnd.randint(1, 9), rnd.randint(1, 9), rnd.randrange(200)))
                rules.append(rule)
                size += len(rule)
                urls += 1
            body = "".join(rules)
            # Padded with url()-free rules up to 5 MB.
            pad = []
            while size < 5_000_000:
                rule = ".p%d{margin:%dpx;color:#%06x}" % (len(pad), rnd.randint(0, 40), rnd.getrandbits(24))
                pad.append(rule)
                size += len(rule)
            css.write_text(body + "".join(pad))
            (site / "index.html").write_text('<!doctype html><link rel="stylesheet" href="css/big.css"><p>large\n')
        nbytes = css.stat().st_size
        load = os.getloadavg()
        log("large text file: %s, 20,000 url()s (load %.2f)" % (human_bytes(nbytes), load[0]))
        res: dict = {"bytes": nbytes, "urls": 20_000, "loadavg_before": [round(x, 2) for x in load],
                     "cores": os.cpu_count() or 1, "runs": {}}
        ap = self.tools.get("assetpub")
        have_ap = bool(ap and not ap.available())
        have_br = bool(shutil.which("brotli"))
        out = self.work / "tmp" / "big.css.br"
        jobs = (["plan", "publish"] if have_ap else []) + (["brotli"] if have_br else [])
        lrunner = Runner(self.work, None)
        # The brotli tool compresses the bytes assetpub publishes: the
        # stylesheet with its url()s rewritten to fingerprinted names, as an
        # unmeasured publish wrote them.
        br_input = css
        if have_ap:
            setup = self.work / "tmp" / "large-setup"
            if setup.exists():
                shutil.rmtree(setup)
            cfg = self.work / "assetpub" / "large.toml"
            cfg.write_text('[source]\ndirs = ["%s"]\n[target]\nurl = "file://%s"\n' % (site, setup))
            db = self.work / "assetpub" / "large-setup.db"
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            lrunner.run("large-setup", [a.assetpub, "--config", str(cfg), "--state", str(db), "publish"], self.tool_env(), a.cap)
            published = sorted(setup.glob("css/big.*.css"))
            if published:
                br_input = published[0]
        res["brotli_input"] = "the stylesheet as published (url()s rewritten)" if br_input != css else "the stylesheet as built"
        for rep in range(a.runs):
            for name in self.rotated(jobs, rep + 1, 0):
                entry = res["runs"].setdefault(name, [])
                if name == "brotli":
                    r = lrunner.run("large-brotli-%d" % rep, ["brotli", "-q", "11", "-w", "22", "-f", "-o", str(out), str(br_input)],
                                    self.tool_env(), a.cap)
                    row = {"wall_s": r["wall_s"], "exit": r["exit"], "br_bytes": out.stat().st_size if out.exists() else None}
                else:
                    # A directory target: its .gz and .br sidecars are
                    # always made (on S3 only with `sidecars = true`).
                    target = self.work / "tmp" / ("large-%s-%d" % (name, rep))
                    if target.exists():
                        shutil.rmtree(target)
                    cfg = self.work / "assetpub" / "large.toml"
                    cfg.write_text('[source]\ndirs = ["%s"]\n[target]\nurl = "file://%s"\n' % (site, target))
                    db = self.work / "assetpub" / ("large-%s-%d.db" % (name, rep))
                    for suffix in ("", "-wal", "-shm", "-journal"):
                        Path(str(db) + suffix).unlink(missing_ok=True)
                    argv = [a.assetpub, "--config", str(cfg), "--state", str(db), "--json", name]
                    env = self.tool_env()
                    r = lrunner.run("large-%s-%d" % (name, rep), argv, env, a.cap)
                    doc = parse_assetpub_json(r["stdout"]) if r["exit"] == 0 else {}
                    row = {"wall_s": r["wall_s"], "exit": r["exit"], "timings": doc.get("timings")}
                    if r["exit"] != 0:
                        row["error"] = tail(r["stderr"]) or tail(r["stdout"])
                    try:
                        raw = json.loads(Path(r["stdout"]).read_text())
                    except (OSError, ValueError):
                        raw = {}
                    br = [u.get("bytes") for u in (raw.get("uploads") or []) if isinstance(u, dict)
                          and str(u.get("key", "")).endswith(".css.br")]
                    if br:
                        row["br_bytes"] = br[0]
                entry.append(row)
                log("  large %-8s %7s  exit %s" % (name, human_secs(r["wall_s"]), r["exit"]))
        if not have_br:
            res["brotli_missing"] = "brotli (the command-line tool) is not installed: apt-get install brotli"
        self.results["large_file"] = res

    def hash_bench(self, site: Path) -> None:
        """Whole processes on the same cores: `assetpub plan` from a new
        state DB against b3sum over the same files, one process and one per
        core, each pinned with taskset to the same CPU set, the order
        rotated every round."""
        a = self.args
        load = os.getloadavg()
        log("hashing throughput: whole assetpub plan (new state DB) vs b3sum (load %.2f)" % load[0])
        n, nbytes = tree_stats(site)
        cores = os.cpu_count() or 1
        pin = ["taskset", "-c", "0-%d" % (cores - 1)] if shutil.which("taskset") else []
        res: dict = {"files": n, "bytes": nbytes, "cores": cores, "pinned": " ".join(pin) or "not pinned (no taskset)",
                     "loadavg_before": [round(x, 2) for x in load],
                     "note": "warm page cache; median of %d run(s); every process on the same %d cores" % (a.runs, cores)}
        flist = self.work / "tmp" / "files.lst"
        with open(flist, "wb") as f:
            for dirpath, _, files in os.walk(site):
                for fn in sorted(files):
                    f.write(os.path.join(dirpath, fn).encode() + b"\0")
        hrunner = Runner(self.work, None)
        ap = self.tools.get("assetpub")
        have_ap = bool(ap and not ap.available())
        have_b3 = bool(shutil.which("b3sum"))
        have_ssl = bool(shutil.which("openssl"))
        data = {k: {"walls": [], "rss": [], "statuses": []}
                for k in ("assetpub_plan", "assetpub_collector", "b3sum", "b3sum_parallel", "sha384_parallel")}
        per_process = str(max(1, n // (cores * 4) + 1))
        jobs = ([("assetpub_plan", None)] if have_ap else []) + ([
            ("b3sum", pin + ["xargs", "-0", "-a", str(flist), "b3sum", "--no-names"]),
            ("b3sum_parallel", pin + ["xargs", "-0", "-a", str(flist), "-P", str(cores), "-n", per_process,
                                      "b3sum", "--no-names"]),
        ] if have_b3 else []) + ([
            # The SHA-384 every manifest entry's `integrity` records: what
            # a plan from a new state DB cannot do without.
            ("sha384_parallel", pin + ["xargs", "-0", "-a", str(flist), "-P", str(cores), "-n", per_process,
                                       "openssl", "dgst", "-sha384", "-r"]),
        ] if have_ssl else [])
        for rep in range(a.runs):
            for name, argv in self.rotated(jobs, rep + 1, 0):
                warm(site)
                if name == "assetpub_plan":
                    if ap.file_mode:
                        # No S3 here: an empty directory target.
                        empty = self.work / "tmp" / ("empty-target-%d" % rep)
                        if empty.exists():
                            shutil.rmtree(empty)
                        empty.mkdir()
                        cfg = self.work / "assetpub" / "hash.toml"
                        cfg.write_text('[source]\ndirs = ["%s"]\n[target]\nurl = "file://%s"\n' % (site, empty))
                    else:
                        cfg = ap.config(self.garage.bucket("hash-empty-%d" % rep), site)
                    db = ap.state("hash-%d" % rep)
                    ap.forget_state("hash-%d" % rep)
                    r = hrunner.run("hash-assetpub-%d" % rep, pin + [a.assetpub, "--config", str(cfg), "--state", str(db), "--json", "plan"],
                                    self.aws_env(), a.cap)
                    st = "ok" if r["exit"] == 0 else "failed: " + (tail(r["stderr"]) or tail(r["stdout"]))
                    t = parse_assetpub_json(r["stdout"]).get("timings") or {}
                    for k in ("assetpub_plan", "assetpub_collector"):
                        data[k]["statuses"].append(st)
                    if r["exit"] == 0:
                        data["assetpub_plan"]["walls"].append(r["wall_s"])
                        data["assetpub_plan"]["rss"].append(r["peak_rss_kb"])
                        if "walk_ms" in t and "hash_ms" in t:
                            data["assetpub_collector"]["walls"].append((t["walk_ms"] + t["hash_ms"]) / 1000)
                            data["assetpub_collector"]["rss"].append(r["peak_rss_kb"])
                        data["assetpub_plan"].setdefault("timings", []).append(t)
                    log("  assetpub plan (new state DB, empty target) %s  exit %s  timings %s" % (human_secs(r["wall_s"]), r["exit"], t))
                else:
                    r = hrunner.run("hash-%s-%d" % (name, rep), argv, self.tool_env(), a.cap)
                    data[name]["statuses"].append("ok" if r["exit"] == 0 else "failed")
                    if r["exit"] == 0:
                        data[name]["walls"].append(r["wall_s"])
                        data[name]["rss"].append(r["peak_rss_kb"])
                    log("  %s %s" % (name, human_secs(r["wall_s"])))
        target = "an empty directory" if (ap and ap.file_mode) else "an empty bucket"
        desc = {
            "assetpub_plan": "the whole `assetpub plan --state NEW.db` against %s (process: state DB, walk, hash, prepare, plan, report)" % target,
            "assetpub_collector": "(inside that plan, for reference only: `timings.walk_ms + timings.hash_ms`, not a whole process)",
            "b3sum": "b3sum over the same files, one process (xargs)",
            "b3sum_parallel": "b3sum over the same files, %d processes (xargs -P %d): all cores" % (cores, cores),
            "sha384_parallel": "SHA-384 alone (`openssl dgst -sha384`) over the same files, %d processes (xargs -P %d): "
                               "all cores" % (cores, cores),
        }
        for k, d in data.items():
            if ((k.startswith("assetpub") and not have_ap) or (k.startswith("b3sum") and not have_b3)
                    or (k.startswith("sha384") and not have_ssl)):
                continue
            res[k] = self._hash_entry(d["walls"], d["rss"], d["statuses"], nbytes, n, desc[k])
            if d.get("timings"):
                res[k]["timings"] = d["timings"]
        if not have_b3:
            res["b3sum"] = {"status": "n/a", "reason": "b3sum not installed"}
        self.results["hashing"] = res

    @staticmethod
    def _hash_entry(walls, rss, statuses, nbytes, n, desc) -> dict:
        if not walls:
            return {"status": "failed", "reason": statuses[-1] if statuses else "not run", "what": desc}
        med = statistics.median(walls)
        return {"status": "ok", "what": desc, "median_s": round(med, 3), "runs_s": walls, "mb_per_s": round(nbytes / 1e6 / med, 1),
                "files_per_s": round(n / med), "peak_rss_kb": max(x or 0 for x in rss)}

    def run_big_tree(self, active: list[Tool], missing: dict) -> None:
        a = self.args
        sid = 6
        for k, why in missing.items():
            self.record(sid, self.tools[k], None, "n/a", why)
        site = self.work / "sites" / ("site-%d" % a.big_files)
        log("large tree: %d files (reused when already generated)" % a.big_files)
        info = self.gen(a.big_files, site, reuse=True)
        self.results["big_site"] = {"files": info["files"], "bytes": info["bytes"], "seed": a.seed, "path": str(site),
                                    "generated_s": info["seconds"], "reused": info["reused"]}
        log("  %d files, %s (%s)" % (info["files"], human_bytes(info["bytes"]), "reused" if info["reused"] else "generated"))
        setup = self.results.setdefault("big_setup", {})
        peers = [t for t in active if t.key != "assetpub"]
        ap = next((t for t in active if t.key == "assetpub"), None)
        ap_bucket = peer_bucket = None
        if ap:
            ap_bucket = self.garage.bucket("ap-big")
            ap.prepare(ap_bucket, site, fresh_state=True)
            # Straight to Garage, like the peers' seeding below (the state DB
            # knows a target by its bucket, not by the endpoint); the
            # measured no-op goes through the proxy again.
            log("  setup: assetpub cold publish of the large tree (direct to Garage, not counted)")
            argv, env = ap.sync(ap_bucket, site)
            if not ap.file_mode:
                ap.config(ap_bucket, site, endpoint="http://127.0.0.1:%d" % self.garage.s3_port)
            r = self.runner.run("s6-setup-assetpub", argv, env, a.big_setup_cap)
            ap.config(ap_bucket, site)
            r["status"] = "ok" if r["exit"] == 0 else ("capped" if r["capped"] else "failed")
            if r["status"] == "failed":
                r["error"] = tail(r["stderr"]) or tail(r["stdout"])
            setup["assetpub"] = r
            log("    %s exit %s, %s requests" % (human_secs(r["wall_s"]), r["exit"], r["requests"].get("requests")))
            if r["status"] != "ok":
                self.record(sid, ap, None, "failed", "setup (cold publish) failed: %s" % r.get("error", r["status"]))
                ap = None
        if peers:
            peer_bucket = self.garage.bucket("peers-big")
            seeder = self.tools.get("rclone-checksum") or Rclone(self, True)
            # Straight to Garage, past the proxy: setup, not a measurement,
            # and the proxy's share of the CPU is better left to Garage.
            log("  setup: seeding the shared peer bucket with rclone sync --checksum (direct to Garage, not counted)")
            argv, env = seeder.sync(peer_bucket, site)
            argv = [x.replace("proxy:", "direct:", 1) if x.startswith("proxy:") else x for x in argv]
            r = self.runner.run("s6-setup-peers", argv, env, a.big_setup_cap)
            r["status"] = "ok" if r["exit"] == 0 else ("capped" if r["capped"] else "failed")
            setup["peers_rclone"] = r
            log("    %s exit %s, %s requests" % (human_secs(r["wall_s"]), r["exit"], r["requests"].get("requests")))
            if r["status"] != "ok":
                for t in peers:
                    self.record(sid, t, None, "failed", "setup (seeding the bucket with rclone) failed")
                peers = []
        for rep in range(1, a.big_runs + 1):
            for t in ([ap] if ap else []) + peers:
                if rep > 1 and not self.should_repeat(sid, t):
                    continue
                bucket = ap_bucket if t is ap else peer_bucket
                self.measure(sid, rep, t, bucket, site, cap=a.big_cap)

    # -- machine ------------------------------------------------------------

    def machine_info(self) -> None:
        mem_kb = 0
        try:
            for ln in open("/proc/meminfo"):
                if ln.startswith("MemTotal:"):
                    mem_kb = int(ln.split()[1])
        except OSError:
            pass
        cpu = "?"
        try:
            for ln in open("/proc/cpuinfo"):
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        versions = {}
        for t in self.tools.values():
            if not t.available():
                name = {"rclone-checksum": "rclone", "aws": "aws-cli"}.get(t.key, t.key)
                if name not in versions:
                    versions[name] = t.version()
        versions["garage"] = first_line([self.args.garage, "--version"])
        if self.args.moto_scenarios:
            # moto_server has no --version; the Python that runs it knows.
            py = Path(shutil.which(self.args.moto) or self.args.moto)
            head = py.read_text(errors="replace").splitlines()[0] if py.is_file() else ""
            interp = head[2:].strip().split()[0] if head.startswith("#!") and "python" in head else None
            if interp is None and "/shims/" in str(py) and shutil.which("pyenv"):
                p = subprocess.run(["pyenv", "which", "python"], capture_output=True, text=True)
                interp = p.stdout.strip() or None
            versions["moto"] = (first_line([interp or sys.executable, "-c", "import moto; print('moto', moto.__version__)"]))
        versions["b3sum"] = first_line(["b3sum", "--version"]) if shutil.which("b3sum") else "not installed"
        versions["python"] = platform.python_version()
        versions["time"] = first_line(["dpkg-query", "-W", "-f", "${Version}", "time"]) if shutil.which("dpkg-query") else "?"
        versions["rustc"] = first_line(["rustc", "--version"]) if shutil.which("rustc") else "?"
        self.results["machine"] = {
            "cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "os": os_release(), "versions": versions,
        }

    # -- summary ------------------------------------------------------------

    def summarize(self) -> None:
        for sid, sc in self.results["scenarios"].items():
            for key, t in sc["tools"].items():
                ok = [r for r in t["runs"] if r["status"] == "ok"]
                if "status" in t and t["status"] in ("n/a", "failed") and not t["runs"]:
                    continue
                if t["runs"] and any(r["status"] == "capped" for r in t["runs"]):
                    t["status"] = "capped"
                    t["rep"] = next(r for r in t["runs"] if r["status"] == "capped")
                    t["reason"] = "stopped after the %d s cap" % (t["rep"].get("cap_s") or 0)
                    t["median_s"] = None
                    continue
                if not ok:
                    t["status"] = "failed"
                    t["reason"] = t["runs"][-1].get("error", "") if t["runs"] else "not run"
                    t["rep"] = t["runs"][-1] if t["runs"] else None
                    continue
                walls = [r["wall_s"] for r in ok]
                med = statistics.median(walls)
                t["status"] = "ok" if len(ok) == len(t["runs"]) else "partly failed"
                t["median_s"] = round(med, 3)
                t["runs_s"] = walls
                # The run whose wall time is nearest the median stands for the cell.
                t["rep"] = min(ok, key=lambda r: abs(r["wall_s"] - med))
            if int(sid) in SAME_ROUND:
                self.same_round(sc)
            peers = [(k, t) for k, t in sc["tools"].items() if k != "assetpub" and t.get("median_s")]
            ap = sc["tools"].get("assetpub")
            if peers:
                bk, bt = min(peers, key=lambda kt: kt[1]["median_s"])
                sc["best_peer"] = {"tool": bk, "label": bt["label"], "median_s": bt["median_s"]}
                if ap and ap.get("median_s"):
                    sc["assetpub_vs_best_peer"] = round(ap["median_s"] / bt["median_s"], 3)
        # Upload throughput in scenario 1.
        s1 = self.results["scenarios"].get("1")
        site = self.results.get("site")
        if s1 and site:
            up = {}
            for k, t in s1["tools"].items():
                if t.get("median_s"):
                    rb = t["rep"]["requests"].get("req_body_bytes", 0)
                    up[k] = {"label": t["label"], "site_mb_per_s": round(site["bytes"] / 1e6 / t["median_s"], 1),
                             "wire_mb_per_s": round(rb / 1e6 / t["median_s"], 1), "median_s": t["median_s"]}
            peers = {k: v for k, v in up.items() if k != "assetpub"}
            if peers:
                fk = max(peers, key=lambda k: peers[k]["site_mb_per_s"])
                up["fastest_peer"] = fk
            self.results["upload_throughput"] = up
        sw = {}
        for sid in ("1", "3", "7", "11", "13", "17"):
            t = self.results["scenarios"].get(sid, {}).get("tools", {}).get("assetpub") or {}
            ms = [r["phases"]["switch_ms"] for r in t.get("runs", [])
                  if r.get("status") == "ok" and (r.get("phases") or {}).get("switch_ms") is not None]
            if ms:
                sw[sid] = {"median_ms": round(statistics.median(ms)), "runs_ms": ms}
        self.results["switch_window"] = sw
        self.goals()

    @staticmethod
    def same_round(sc: dict) -> None:
        """Every tool's reported row (requests, bytes) from the same round:
        the one of assetpub's run nearest its median (else the first
        tool's). Medians still count every round a tool ran."""
        ref = sc["tools"].get("assetpub")
        if not (ref and ref.get("median_s")):
            ref = next((t for t in sc["tools"].values() if t.get("median_s")), None)
        if not ref or "round" not in (ref.get("rep") or {}):
            return
        rnd = ref["rep"]["round"]
        sc["rep_round"] = rnd
        for t in sc["tools"].values():
            if not t.get("median_s"):
                continue
            same = [r for r in t["runs"] if r.get("round") == rnd and r["status"] == "ok"]
            if same:
                t["rep"] = same[0]
            else:
                t["rep_round_missing"] = True

    def goals(self) -> None:
        """Issue 17's goals, as this run measured them."""
        res = self.results
        sc = res["scenarios"]
        g = []

        def row(sid):
            t = sc.get(str(sid), {}).get("tools", {}).get("assetpub", {})
            return t if t.get("median_s") else None

        def best(sid):
            bp = sc.get(str(sid), {}).get("best_peer")
            return (bp, sc[str(sid)]["tools"][bp["tool"]]) if bp else (None, None)

        def cold(sid):
            ap, (bp, bt) = row(sid), best(sid)
            if not (ap and bp):
                return None
            apr = ap["rep"]["requests"].get("requests", 0)
            bpr = bt["rep"]["requests"].get("requests", 0)
            text = "%s requests against %s (%s); %s against %s" % (
                "{:,}".format(apr), "{:,}".format(bpr), bp["label"], human_secs(ap["median_s"]),
                human_secs(bp["median_s"]))
            ph = ap["rep"].get("phases") or {}
            why = []
            if beyond_objects(ph.get("purposes")):
                why.append("requests beyond the objects and pages: " + beyond_objects(ph.get("purposes")))
            if ph.get("requests_span_ms") is not None:
                # The run nearest the median: its wall time, less the span
                # from its first request to its last, is the local work
                # (walk, hash, prepare: bad input is refused before anything
                # remote changes) and the report.
                outside = ap["rep"]["wall_s"] - ph["requests_span_ms"] / 1000
                why.append("of the run nearest the median (%s), %s before the first request or after the last "
                           "(walk %s ms, hash %s ms, prepare %s ms) and %s from the first request to the last" % (
                               human_secs(ap["rep"]["wall_s"]), human_secs(outside), ph.get("walk_ms"),
                               ph.get("hash_ms"), ph.get("prepare_ms"), human_secs(ph["requests_span_ms"] / 1000)))
            if why:
                text += " (" + "; ".join(why) + ")"
            return {"text": text, "requests": apr <= bpr + 5, "time": ap["median_s"] <= bp["median_s"]}

        on_garage, on_moto = cold(1), cold(21)
        if on_garage or on_moto:
            texts, parts = [], {}
            for where, c in (("Garage", on_garage), ("moto", on_moto)):
                if c:
                    texts.append("%s: %s" % (where, c["text"]))
                    parts["requests (%s)" % where] = c["requests"]
                    parts["time (%s)" % where] = c["time"]
            g.append({"goal": "1. cold publish: no more requests than the best peer (+5 for manifest, deploy record, lock), "
                              "and no slower",
                      "measured": "; ".join(texts), "met": all(parts.values()), "parts": parts})

        def fresh(sid):
            ap = row(sid)
            if not ap:
                return None
            rq = ap["rep"]["requests"]
            j = ap["rep"].get("assetpub") or {}
            ups = j.get("uploads_count", 0) + j.get("written_straight_count", 0)
            kept = j.get("kept_pages", 0) or 0
            beyond = rq.get("requests", 0) - ups - kept
            more = beyond_objects((ap["rep"].get("phases") or {}).get("purposes")) or fmt_counts(rq.get("ops", {}))
            return {"text": "%d requests: %d uploaded object%s + %d cop%s keeping the replaced page + %d more (%s)" % (
                        rq.get("requests", 0), ups, "" if ups == 1 else "s", kept, "y" if kept == 1 else "ies", beyond,
                        more),
                    "met": beyond <= 6}

        on_garage, on_moto = fresh(7), fresh(27)
        if on_garage or on_moto:
            texts, parts = [], {}
            for where, f in (("moto", on_moto), ("Garage", on_garage)):
                if f:
                    texts.append("%s: %s" % (where, f["text"]))
                    parts[where] = f["met"]
            g.append({"goal": "2. fresh runner, one-file change: at most 6 requests beyond the objects it uploads (and the "
                              "copy that keeps a replaced page for rollback)",
                      "measured": "; ".join(texts), "met": all(parts.values()), "parts": parts,
                      "closing": GOAL_CLOSING[2]})
        lat = [s for s in (11, 12, 13, 17) if str(s) in sc]
        if lat:
            bits, ok = [], True
            for s in lat:
                ap, (bp, _) = row(s), best(s)
                if ap and bp:
                    bits.append("%s %s vs %s %s" % (SCENARIOS[s][0], human_secs(ap["median_s"]), bp["label"], human_secs(bp["median_s"])))
                    ok = ok and ap["median_s"] < bp["median_s"]
                else:
                    ok = False
                    bits.append("%s: no comparison" % SCENARIOS[s][0])
            g.append({"goal": "3. with %g ms per request, assetpub fastest in cold, no-op, 1%% change and fresh runner" % self.args.latency_ms,
                      "measured": "; ".join(bits), "met": ok, "closing": GOAL_CLOSING[3]})
        h = res.get("hashing") or {}
        if h.get("assetpub_plan", {}).get("status") == "ok" and h.get("b3sum_parallel", {}).get("status") == "ok":
            pct = 100 * h["assetpub_plan"]["mb_per_s"] / h["b3sum_parallel"]["mb_per_s"]
            text = "%.0f MB/s against %.0f MB/s: %.0f%%" % (h["assetpub_plan"]["mb_per_s"], h["b3sum_parallel"]["mb_per_s"], pct)
            if hash_floor(h):
                text += " (" + hash_floor(h) + ")"
            g.append({"goal": "4. a whole `plan` from a new state DB at >= 80% of b3sum's throughput over all cores",
                      "measured": text, "met": pct >= 80, "closing": GOAL_CLOSING[4]})
        res["goals"] = g

    # -- outputs ------------------------------------------------------------

    def write_outputs(self) -> None:
        a = self.args
        self.results["config"] = {
            "quick": a.quick, "runs": a.runs, "big_runs": a.big_runs, "files": a.files, "big_files": a.big_files,
            "seed": a.seed, "change_pct": a.change_pct, "latency_ms": a.latency_ms, "latency_scenarios": a.latency_scenarios,
            "latency_tools": a.latency_tools, "moto_scenarios": a.moto_scenarios, "moto_tools": a.moto_tools, "concurrency": CONCURRENCY, "garage_db": a.garage_db, "cap_s": a.cap, "big_cap_s": a.big_cap,
            "repeat_max_secs": a.repeat_max_secs, "repeat_max_ratio": a.repeat_max_ratio, "fresh_mtimes": a.fresh_mtimes, "assetpub_target": a.assetpub_target, "scenarios": a.scenarios,
            "tools": {k: {"label": t.label, "settings": t.settings} for k, t in self.tools.items()},
        }
        name = a.output or "latest"
        self.out_json = self.results_dir / (name + ".json")
        self.out_md = self.results_dir / (name + ".md")
        tmp = self.out_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=2, sort_keys=False) + "\n")
        tmp.replace(self.out_json)
        md = render_markdown(self.results, self.args)
        self.out_md.write_text(md)
        print()
        print(md)


def short(key: str) -> str:
    return {"assetpub": "ap", "rclone-checksum": "rcs", "rclone": "rcm", "aws": "aws", "s3cmd": "s3cmd"}[key]


def os_release() -> str:
    try:
        for ln in open("/etc/os-release"):
            if ln.startswith("PRETTY_NAME="):
                return ln.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def assetpub_phases(path: str, timeline: list | None) -> dict:
    """assetpub's phases in one run: walk, hash, prepare and the switch
    window from its `--json` timings; the upload phase and the stable-key
    writes from the proxy's request timeline (the requests that write a key
    the report lists under `uploads`, and under `stable_keys`)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    t = doc.get("timings") or {}
    out = {k: t.get(k) for k in ("walk_ms", "hash_ms", "prepare_ms", "switch_ms")}
    out["duration_ms"] = doc.get("duration_ms")
    if not timeline:
        return out
    from urllib.parse import unquote, urlsplit

    def key_of(target: str) -> str:
        return unquote(urlsplit(target).path.lstrip("/").partition("/")[2])

    uploads = {u.get("key") for u in doc.get("uploads") or [] if isinstance(u, dict)}
    stable = {u.get("key") for u in doc.get("stable_keys") or [] if isinstance(u, dict)}
    writes = ("PUT", "COPY", "UPLOAD_PART", "MPU_CREATE", "MPU_COMPLETE", "UPLOAD_PART_COPY")
    up, st = [], []
    for start, end, _method, op, target, _status in timeline:
        if op not in writes:
            continue
        k = key_of(target)
        if k in stable:
            st.append((start, end))
        elif k in uploads:
            up.append((start, end))
    first = min(x[0] for x in timeline)
    last = max(x[1] for x in timeline)
    out["requests_span_ms"] = round((last - first) * 1000)
    if up:
        out["upload_ms"] = round((max(e for _, e in up) - min(s for s, _ in up)) * 1000)
        out["upload_requests"] = len(up)
        out["before_upload_ms"] = round((min(s for s, _ in up) - first) * 1000)
    if st:
        out["stable_ms"] = round((max(e for _, e in st) - min(s for s, _ in st)) * 1000)
        out["stable_requests"] = len(st)
        if up:
            # Negative: the stable-key writes overlapped the uploads.
            out["upload_to_stable_gap_ms"] = round((min(s for s, _ in st) - max(e for _, e in up)) * 1000)
        out["after_stable_ms"] = round((last - max(e for _, e in st)) * 1000)
    out["purposes"] = request_purposes(timeline, uploads, stable)
    return out


# Why a goal of issue 17 that a run misses is missed, and what would close
# it: the requests and phases named here are the ones the goals table
# measures (README, "Reading of the latest run", gives the same reasons).
GOAL_CLOSING = {
    "1 requests": "The requests beyond the +5 are guards: the lock's read before its first create (a store that "
                  "ignores `If-None-Match` would otherwise overwrite a lock another run holds), the second create "
                  "that learns whether the store enforces conditions, and a second read of `manifest.json` just "
                  "before the first page (a first deploy has no manifest to mark); on a store that ignores "
                  "`If-Match`, a read of the lock before its delete. Closing it means dropping one of them.",
    "1 time": "The time before the first request is walking, hashing and preparing the build, which must refuse "
              "bad input before anything remote changes; closing the time gap means sending before the build is "
              "checked, or writing pages before the last upload (a longer switch window).",
    2: "On a store that ignores conditions (Garage) three reads stand in for them: the lock before it is taken, the "
       "manifest just before the mark, the lock before it is deleted. Each is the only guard there, so closing it "
       "means running unguarded.",
    3: "The cold publish pays the same local phase before its first request as in goal 1, and with 25 ms a "
       "request the sequential guards and the switch's own requests add their round trips.",
    4: "Every byte is hashed twice: blake3 for the key and SHA-384 for the `integrity` every manifest entry records; "
       "SHA-384 alone over all cores takes longer than the goal allows the whole plan, so closing it means dropping "
       "`integrity` from the plan (computing it later, in the upload) or recording a cheaper digest.",
}

# What each of assetpub's requests was for, by the key it names (README,
# "Remote layout"), in the order the goals text lists them.
PURPOSES = ("objects", "pages", "copies", "manifest.json", "lock", "deploy record", "probe", "batch delete", "other")


def request_purposes(timeline: list, uploads: set, stable: set) -> dict:
    """assetpub's requests in one run, by what they were for: the objects
    its report lists under `uploads`, the pages under `stable_keys`, the
    copies that keep a replaced page under its fingerprinted name, and each
    key of its own (`manifest.json`, `.assetpub/lock`, the deploy records
    under `.assetpub/deploys/`, any other `.assetpub/` key: the probe of
    conditional writes). Each: {S3 operation: count}."""
    from urllib.parse import unquote, urlsplit

    out: dict = {}
    for _start, _end, _method, op, target, _status in timeline:
        key = unquote(urlsplit(target).path.lstrip("/").partition("/")[2])
        if op == "DELETE_OBJECTS":
            what = "batch delete"
        elif key == "manifest.json":
            what = "manifest.json"
        elif key == ".assetpub/lock":
            what = "lock"
        elif key.startswith(".assetpub/deploys/"):
            what = "deploy record"
        elif key.startswith(".assetpub/"):
            what = "probe"
        elif op == "COPY":
            what = "copies"
        elif key in stable:
            what = "pages"
        elif key in uploads:
            what = "objects"
        else:
            what = "other"
        ops = out.setdefault(what, {})
        ops[op] = ops.get(op, 0) + 1
    return out


def hash_floor(h: dict) -> str:
    """What the hashing goal allows a whole plan (80% of b3sum over all
    cores), against SHA-384 alone over all cores, as text; "" when either
    was not measured."""
    b3, sha = h.get("b3sum_parallel") or {}, h.get("sha384_parallel") or {}
    if b3.get("status") != "ok" or sha.get("status") != "ok":
        return ""
    allowed = b3["median_s"] / 0.8
    return ("80%% of b3sum's throughput allows the whole plan %s; SHA-384 alone, which every manifest entry's "
            "`integrity` needs, takes %s over the same cores" % (human_secs(allowed), human_secs(sha["median_s"])))


def beyond_objects(purposes: dict | None) -> str:
    """The requests of `purposes` other than objects, pages and copies, as
    text: `manifest.json 2 (GET 1, PUT 1), lock 2 (PUT 1, DELETE 1)`."""
    if not purposes:
        return ""
    bits = []
    for what in PURPOSES[3:]:
        ops = purposes.get(what)
        if ops:
            bits.append("%s %d (%s)" % (what, sum(ops.values()), fmt_counts(ops)))
    return ", ".join(bits)


def parse_assetpub_json(path: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out = {}
    # Stable keys written with the page's own bytes (no `copy_of`): objects
    # uploaded as much as those under `uploads`.
    stable = doc.get("stable_keys")
    if isinstance(stable, list):
        out["written_straight_count"] = sum(1 for x in stable if isinstance(x, dict) and not x.get("copy_of"))
    for k, v in doc.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, list):
            out[k + "_count"] = len(v)
        elif isinstance(v, dict):
            small = {kk: vv for kk, vv in v.items() if isinstance(vv, (int, float, str, bool))}
            if small:
                out[k] = small
            lists = {kk + "_count": len(vv) for kk, vv in v.items() if isinstance(vv, list)}
            if lists:
                out.setdefault(k, {}).update(lists)
    return out


# ---------------------------------------------------------------------------
# Markdown


def fmt_counts(d: dict) -> str:
    if not d:
        return "0"
    return ", ".join("%s %s" % (k, "{:,}".format(v)) for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def render_markdown(res: dict, args) -> str:
    m = res.get("machine", {})
    cfg = res.get("config", {})
    site = res.get("site")
    big = res.get("big_site")
    L = []
    L.append("# assetpub benchmark%s" % (" (quick smoke run)" if cfg.get("quick") else ""))
    L.append("")
    L.append("Run %s to %s (%.0f s), load average at start %s. Rerun with `bench/run`%s." % (
        res.get("started"), res.get("finished"), res.get("elapsed_s", 0),
        " / ".join("%.2f" % x for x in res.get("loadavg_at_start", [])),
        " --quick" if cfg.get("quick") else ""))
    L.append("")
    if site:
        L.append("Site: %s files, %s (bench/gen_site.py, seed %d)%s." % (
            "{:,}".format(site["files"]), human_bytes(site["bytes"]), site["seed"],
            "; large tree: %s files, %s" % ("{:,}".format(big["files"]), human_bytes(big["bytes"])) if big else ""))
    elif big:
        L.append("Large tree: %s files, %s." % ("{:,}".format(big["files"]), human_bytes(big["bytes"])))
    L.append("")
    L.append("Each cell: median wall time of up to %d run(s) (a tool whose first run takes over %d s, or a peer whose first run takes "
             "over %g times the fastest peer's, is not repeated), the requests of the run "
             "nearest the median as counted by bench/countproxy.py, by HTTP method and by S3 operation, request body "
             "bytes sent, the most requests in flight at once, and peak RSS (`/usr/bin/time -v`). \"vs assetpub\" is the tool's time over assetpub's (above 1: "
             "slower than assetpub); \"assetpub ÷ best peer\" is assetpub's time over the fastest peer's (below 1: "
             "assetpub is faster)." % (cfg.get("runs", 1), cfg.get("repeat_max_secs", 0), cfg.get("repeat_max_ratio", 0)))
    L.append("")
    L.append("## Machine and versions")
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    L.append("| CPU | %s cores, %s |" % (m.get("cores"), m.get("cpu")))
    L.append("| Memory | %s GiB |" % m.get("memory_gib"))
    L.append("| OS | %s, Linux %s |" % (m.get("os"), m.get("kernel")))
    for k, v in m.get("versions", {}).items():
        L.append("| %s | %s |" % (k, str(v).replace("|", "/")))
    L.append("")
    L.append("Server: Garage, single node on 127.0.0.1 (%s metadata, no compression), behind the counting proxy; "
             "every tool uses path-style requests through the proxy, concurrency %d where the tool has a setting. "
             "Each tool publishes into its own buckets." % (cfg.get("garage_db", "sqlite"), cfg.get("concurrency", CONCURRENCY)))
    L.append("")
    L.append("| tool | settings |")
    L.append("| --- | --- |")
    for k, t in cfg.get("tools", {}).items():
        L.append("| %s | %s |" % (t["label"], t["settings"].replace("|", "/")))
    L.append("")
    cores = m.get("cores") or 1
    if res.get("goals"):
        L.append("## Goals")
        L.append("")
        L.append("| goal | measured | met |")
        L.append("| --- | --- | --- |")
        for g in res["goals"]:
            met = "yes" if g["met"] else "no"
            if g.get("parts") and not g["met"]:
                met = "no (" + ", ".join("%s: %s" % (k, "yes" if v else "no") for k, v in g["parts"].items()) + ")"
            L.append("| %s | %s | %s |" % (g["goal"], g["measured"].replace("|", "/"), met))
        L.append("")
        def closing(g):
            if g.get("closing"):
                return g["closing"]
            n = int(g["goal"].split(".")[0])
            if n == 1:
                # Only for the part that is missed.
                return " ".join(GOAL_CLOSING["1 " + what] for what in ("requests", "time")
                                if any(not v for k, v in g.get("parts", {}).items() if k.startswith(what)))
            return GOAL_CLOSING.get(n)
        missed = [g for g in res["goals"] if not g["met"] and closing(g)]
        if missed:
            L.append("What a missed goal costs to close, from the measurements above:")
            L.append("")
            for g in missed:
                L.append("- **%s** %s" % (g["goal"].split(":")[0], closing(g)))
            L.append("")
    L.append("## Summary")
    L.append("")
    L.append("Load: the 1-minute load average just before each scenario; ⚠ marks a scenario started with it above the "
             "%d cores: more was running than the cores could take (the bench's own servers and proxies count too), so its "
             "times are less reliable." % cores)
    L.append("")
    L.append("| scenario | load before | assetpub | best peer | assetpub ÷ best peer | assetpub requests | best peer requests |")
    L.append("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for sid in sorted(res["scenarios"], key=int):
        sc = res["scenarios"][sid]
        apt = sc["tools"].get("assetpub", {})
        bp = sc.get("best_peer")
        ap_cell = human_secs(apt["median_s"]) if apt.get("median_s") else (apt.get("status") or "-")
        bp_cell = "%s, %s" % (bp["label"], human_secs(bp["median_s"])) if bp else "-"
        ratio = "**%.2f×**" % sc["assetpub_vs_best_peer"] if sc.get("assetpub_vs_best_peer") else "-"
        apr = "{:,}".format(apt["rep"]["requests"].get("requests", 0)) if apt.get("median_s") else "-"
        bpr = "{:,}".format(sc["tools"][bp["tool"]]["rep"]["requests"].get("requests", 0)) if bp else "-"
        la = sc.get("loadavg_before")
        load = ("%.2f%s" % (la[0], " ⚠" if sc.get("under_load") else "")) if la else "-"
        L.append("| %s. %s | %s | %s | %s | %s | %s | %s |" % (sid, SCENARIOS[int(sid)][0], load, ap_cell, bp_cell, ratio, apr, bpr))
    L.append("")
    for sid in sorted(res["scenarios"], key=int):
        sc = res["scenarios"][sid]
        note = SCENARIO_NOTES.get(int(sid), "")
        if sid == "5" and cfg.get("fresh_mtimes") == "keep":
            note = ("Before each run assetpub's state DB is deleted; files and mtimes are unchanged "
                    "(`--fresh-mtimes keep`). Peers keep no state anyway.")
        if int(sid) in LATENCY_BASE:
            note = ("Through a second counting proxy that holds every request %g ms before forwarding it (`countproxy.py "
                    "--latency-ms`), in buckets of its own. " % cfg.get("latency_ms", 0)) + \
                SCENARIO_NOTES.get(LATENCY_BASE[int(sid)], "")
        if int(sid) in MOTO_BASE:
            note = ("On moto_server (%s), which answers `If-None-Match`/`If-Match` with 412 as AWS S3 does (Garage "
                    "ignores both), through a counting proxy of its own, in buckets of its own; tools: %s. " % (
                        res.get("machine", {}).get("versions", {}).get("moto", "moto"), ", ".join(cfg.get("moto_tools", [])))) + \
                SCENARIO_NOTES.get(MOTO_BASE[int(sid)], "")
        name = SCENARIOS[int(sid)][1].format(pct=cfg.get("change_pct"), big_files=(big or {}).get("files", cfg.get("big_files", 0)),
                                             latency="%g" % cfg.get("latency_ms", 0))
        L.append("## %s. %s" % (sid, name))
        L.append("")
        L.append(note)
        L.append("")
        la = sc.get("loadavg_before")
        if la:
            L.append("Load average before the scenario: %s%s." % (" / ".join("%.2f" % x for x in la),
                                                               " (⚠ above the %d cores)" % cores if sc.get("under_load") else ""))
            L.append("")
        if sc.get("rep_round"):
            L.append("Every row's requests and bytes come from the same round (%d); wall times are medians over every round "
                     "the tool ran." % sc["rep_round"])
            L.append("")
        L.append("| tool | wall (median) | runs | vs assetpub | requests | max in flight | by method | by S3 operation | request bytes | peak RSS |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |")
        ap = sc["tools"].get("assetpub", {}).get("median_s")
        for key in TOOL_ORDER:
            t = sc["tools"].get(key)
            if not t:
                continue
            st = t.get("status")
            if st in ("n/a", "failed", "capped") and not t.get("median_s"):
                what = {"n/a": "N/A", "failed": "failed", "capped": "> %s (capped)" % human_secs((t.get("rep") or {}).get("cap_s") or cfg.get("big_cap_s"))}[st]
                rep = t.get("rep")
                if st == "capped" and rep:
                    rq = rep["requests"]
                    L.append("| %s | %s | %d | | %s | %s | %s | %s | %s | %s |" % (
                        t["label"], what, len(t["runs"]), "{:,}".format(rq.get("requests", 0)) + " (at cap)",
                        rq.get("peak_inflight", "-"), fmt_counts(rq.get("methods", {})), fmt_counts(rq.get("ops", {})),
                        human_bytes(rq.get("req_body_bytes", 0)), "-"))
                else:
                    L.append("| %s | %s (see below) | | | | | | | | |" % (t["label"], what))
                continue
            rep = t["rep"]
            rq = rep["requests"]
            vs = ""
            if key != "assetpub" and ap:
                vs = "%.2f×" % (t["median_s"] / ap)
            L.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                t["label"], human_secs(t["median_s"]), len(t["runs_s"]), vs, "{:,}".format(rq.get("requests", 0)),
                rq.get("peak_inflight", "-"), fmt_counts(rq.get("methods", {})), fmt_counts(rq.get("ops", {})), human_bytes(rq.get("req_body_bytes", 0)),
                "%.0f MiB" % (rep["peak_rss_kb"] / 1024) if rep.get("peak_rss_kb") else "-"))
        L.append("")
        if sc.get("best_peer"):
            bp = sc["best_peer"]
            if sc.get("assetpub_vs_best_peer"):
                r = sc["assetpub_vs_best_peer"]
                L.append("assetpub vs best peer (%s, %s): **%.2f×** the time%s." % (
                    bp["label"], human_secs(bp["median_s"]), r,
                    " (%.1f× faster)" % (1 / r) if r < 1 else (" (%.1f× slower)" % r if r > 1 else "")))
            else:
                L.append("Best peer: %s, %s; assetpub has no time here." % (bp["label"], human_secs(bp["median_s"])))
            L.append("")
        notes = []
        if sc.get("warmup"):
            notes.append("unmeasured warm-up republish before the runs: " + ", ".join(
                "%s %s (%s requests)" % (w["label"], human_secs(w["wall_s"]), "{:,}".format(w["requests"]))
                for w in sc["warmup"].values()))
        for key in TOOL_ORDER:
            t = sc["tools"].get(key)
            if not t:
                continue
            if t.get("bucket_after") and "count" in t["bucket_after"]:
                notes.append("%s: bucket holds %s objects, %s" % (t["label"], "{:,}".format(t["bucket_after"]["count"]),
                                                                human_bytes(t["bucket_after"]["bytes"])))
            if key == "assetpub" and t.get("rep") and t["rep"].get("assetpub"):
                apj = t["rep"]["assetpub"]
                bits = ["%s=%s" % (k, json.dumps(v, separators=(",", ":"))) for k, v in apj.items() if k in (
                    "files", "hashed", "unchanged", "uploads_count", "stable_keys_count", "written_straight_count", "kept_pages",
                    "upload_bytes", "duration_ms",
                    "changed", "timings")]
                if bits:
                    notes.append("assetpub --json: " + ", ".join(bits))
            if int(sid) in (7, 17, 27) and t.get("rep") and t.get("median_s"):
                rq = t["rep"]["requests"]
                if key == "assetpub":
                    j = t["rep"].get("assetpub") or {}
                    ups = j.get("uploads_count", 0) + j.get("written_straight_count", 0)
                    kept = j.get("kept_pages", 0) or 0
                    ws = j.get("written_straight_count", 0)
                    what = ("uploaded object%s (%d under `uploads` in its report, %d page%s written straight to %s "
                            "stable key%s) + %d cop%s keeping the replaced page for rollback (`kept_pages`)" % (
                                "" if ups == 1 else "s", j.get("uploads_count", 0), ws, "" if ws == 1 else "s",
                                "its" if ws == 1 else "their", "" if ws == 1 else "s", kept, "y" if kept == 1 else "ies"))
                else:
                    ups, kept = rq.get("ops", {}).get("PUT", 0), 0
                    what = "PUTs"
                notes.append("%s: %s requests = %s %s + %s more" % (
                    t["label"], "{:,}".format(rq.get("requests", 0)), "{:,}".format(ups), what,
                    "{:,}".format(rq.get("requests", 0) - ups - kept)))
            if t.get("rep_round_missing") and t.get("rep"):
                notes.append("%s: row from round %s (it did not run round %s: not repeated)" % (
                    t["label"], t["rep"].get("round"), sc.get("rep_round")))
            gq = (t.get("rep") or {}).get("garage_requests")
            if gq and gq.get("requests") != ((t.get("rep") or {}).get("requests") or {}).get("requests"):
                notes.append("%s: Garage's /metrics counted %s requests (%s), the proxy %s" % (
                    t["label"], "{:,}".format(gq["requests"]), fmt_counts(gq.get("endpoints", {})),
                    "{:,}".format(t["rep"]["requests"].get("requests", 0))))
            st_counts = ((t.get("rep") or {}).get("requests") or {}).get("status", {})
            errs = {k: v for k, v in st_counts.items() if k[0] in "45"}
            if errs:
                notes.append("%s: error responses: %s" % (t["label"], fmt_counts(errs)))
            if t.get("status") in ("n/a", "failed", "capped") and not t.get("median_s"):
                notes.append("%s %s: %s" % (t["label"], {"n/a": "N/A", "failed": "failed", "capped": "capped"}[t["status"]],
                                            (t.get("reason") or "").replace("|", "/")[:400]))
            if t.get("status") == "partly failed":
                notes.append("%s: some runs failed: %s" % (t["label"], next((r.get("error") for r in t["runs"] if r["status"] != "ok"), "")))
        if sid == "6" and res.get("big_setup"):
            for k, r in res["big_setup"].items():
                if k == "assetpub":
                    ap_json = parse_assetpub_json(r.get("stdout", ""))
                    notes.append("setup, assetpub cold publish (direct to Garage, not counted): %s, %s objects uploaded "
                                 "and %s stable keys written, exit %s" % (
                                     human_secs(r["wall_s"]), "{:,}".format(ap_json.get("uploads_count", 0)),
                                     "{:,}".format(ap_json.get("stable_keys_count", 0)), r["exit"]))
                else:
                    notes.append("setup, rclone --checksum seeding the shared peer bucket (direct to Garage, not counted): "
                                 "%s, exit %s" % (human_secs(r["wall_s"]), r["exit"]))
        if notes:
            for n in notes:
                L.append("- " + n)
            L.append("")
    up = res.get("upload_throughput")
    if up:
        L.append("## Upload throughput (scenario 1)")
        L.append("")
        L.append("| tool | wall (median) | site MB/s | MB/s on the wire |")
        L.append("| --- | ---: | ---: | ---: |")
        for key in TOOL_ORDER:
            if key in up:
                u = up[key]
                mark = " **fastest peer**" if up.get("fastest_peer") == key else ""
                L.append("| %s%s | %s | %.1f | %.1f |" % (u["label"], mark, human_secs(u["median_s"]), u["site_mb_per_s"], u["wire_mb_per_s"]))
        if "assetpub" in up and up.get("fastest_peer"):
            fp = up[up["fastest_peer"]]
            L.append("")
            L.append("assetpub uploads the site at %.2f× the rate of the fastest peer (%s)." % (
                up["assetpub"]["site_mb_per_s"] / fp["site_mb_per_s"], fp["label"]))
        L.append("")
    phase_rows = []
    for sid in sorted(res["scenarios"], key=int):
        t = res["scenarios"][sid]["tools"].get("assetpub") or {}
        for r in t.get("runs", []):
            ph = r.get("phases")
            if r.get("status") == "ok" and ph and int(sid) in (1, 3, 7, 11, 13, 17):
                phase_rows.append((sid, r, ph))
    if phase_rows:
        L.append("## assetpub's phases")
        L.append("")
        L.append("Every run of assetpub in the publishing scenarios. walk, hash, prepare and switch come from its "
                 "`--json` report (`timings`); the switch window runs from marking the served manifest (just before "
                 "the first stable-key write) to the new manifest's write, and on S3 the pages change key by key "
                 "within it. upload is the span of the requests that write the objects listed under `uploads` "
                 "(as timed by the proxy), stable the span of the writes of `stable_keys`, and gap the time from "
                 "the last upload's answer to the first stable-key write (negative: they overlapped). All in ms.")
        L.append("")
        L.append("| scenario | run | wall | walk | hash | prepare | upload (requests) | gap | stable (writes) | switch window | duration_ms |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

        def c(v):
            return "-" if v is None else "{:,}".format(v)
        for sid, r, ph in phase_rows:
            L.append("| %s. %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** | %s |" % (
                sid, SCENARIOS[int(sid)][0], r.get("round", "") or "", human_secs(r["wall_s"]), c(ph.get("walk_ms")),
                c(ph.get("hash_ms")), c(ph.get("prepare_ms")),
                ("%s (%s)" % (c(ph["upload_ms"]), c(ph.get("upload_requests")))) if "upload_ms" in ph else "-",
                c(ph.get("upload_to_stable_gap_ms")),
                ("%s (%s)" % (c(ph["stable_ms"]), c(ph.get("stable_requests")))) if "stable_ms" in ph else "-",
                c(ph.get("switch_ms")), c(ph.get("duration_ms"))))
        L.append("")
        sw = res.get("switch_window") or {}
        for sid in ("1", "3"):
            if sw.get(sid):
                w = sw[sid]
                L.append("- Switch window, %s on the %s-file site: median %s ms (runs: %s)." % (
                    {"1": "cold publish", "3": "%s%% change" % cfg.get("change_pct")}[sid],
                    "{:,}".format(site["files"]) if site else "?", "{:,}".format(w["median_ms"]),
                    ", ".join("{:,}".format(x) for x in w["runs_ms"])))
        L.append("")
    dc = res.get("direct_cold")
    if dc and dc.get("tools"):
        L.append("## Cold publish without the proxy (requests from Garage's /metrics)")
        L.append("")
        L.append("The cold publish run once more, straight to Garage, into a new bucket per tool; the requests are "
                 "Garage's own `api_s3_request_counter` from its admin API's `/metrics`, read before and after. Beside "
                 "it, the same tool's proxied cold publish (scenario 1, median) and what Garage counted for it.")
        L.append("")
        L.append("| tool | direct wall | direct requests (Garage) | proxied wall (median) | proxied requests (proxy / Garage) | proxy's cost |")
        L.append("| --- | ---: | --- | ---: | ---: | ---: |")
        s1 = res["scenarios"].get("1", {}).get("tools", {})
        for key in TOOL_ORDER:
            d = dc["tools"].get(key)
            if not d:
                continue
            gq = d.get("garage_requests") or {}
            p = s1.get(key, {})
            prq = (p.get("rep") or {}).get("requests", {}).get("requests")
            pgq = ((p.get("rep") or {}).get("garage_requests") or {}).get("requests")
            cost = ("%+.0f%%" % (100 * (p["median_s"] / d["wall_s"] - 1))) if (p.get("median_s") and d.get("status") == "ok") else "-"
            L.append("| %s | %s%s | %s (%s) | %s | %s / %s | %s |" % (
                d["label"], human_secs(d["wall_s"]), "" if d.get("status") == "ok" else " (%s)" % d.get("status"),
                "{:,}".format(gq.get("requests", 0)) if gq else "?", fmt_counts(gq.get("endpoints", {})) if gq else "",
                human_secs(p.get("median_s")), "{:,}".format(prq) if prq is not None else "-",
                "{:,}".format(pgq) if pgq is not None else "-", cost))
        L.append("")
        if dc.get("skipped"):
            L.append("Not run straight to Garage: %s (their proxied cold run took over %g× the fastest one)." % (
                ", ".join(dc["skipped"]), cfg.get("repeat_max_ratio", 0)))
            L.append("")
        if dc.get("loadavg_before"):
            L.append("Load average before: %s." % " / ".join("%.2f" % x for x in dc["loadavg_before"]))
            L.append("")
    lf = res.get("large_file")
    if lf:
        L.append("## Large text file (%s of minified CSS, %s url()s, %d cores)" % (
            human_bytes(lf["bytes"]), "{:,}".format(lf["urls"]), lf["cores"]))
        L.append("")
        L.append("| what | wall (median) | runs | .br bytes |")
        L.append("| --- | ---: | ---: | ---: |")
        what = {"plan": "`assetpub plan`, new state DB, empty directory target",
                "publish": "`assetpub publish`, new state DB, empty directory target (.gz and .br made)",
                "brotli": "`brotli -q 11 -w 22` on %s alone" % lf.get("brotli_input", "the stylesheet")}
        med = {}
        for k in ("plan", "publish", "brotli"):
            rows = [x for x in lf["runs"].get(k, []) if x.get("exit") == 0]
            if not rows:
                if k in lf["runs"]:
                    L.append("| %s | failed: %s | | |" % (what[k], (lf["runs"][k][0].get("error") or "")[:200].replace("|", "/")))
                continue
            med[k] = statistics.median([x["wall_s"] for x in rows])
            brs = [x["br_bytes"] for x in rows if x.get("br_bytes")]
            L.append("| %s | %s | %d | %s |" % (what[k], human_secs(med[k]), len(rows), "{:,}".format(brs[0]) if brs else ""))
        L.append("")
        if "brotli" in med:
            for k in ("plan", "publish"):
                if k in med:
                    L.append("- `assetpub %s` takes %.2f× the time of the brotli tool on the stylesheet alone." % (k, med[k] / med["brotli"]))
        elif lf.get("brotli_missing"):
            L.append("- " + lf["brotli_missing"])
        L.append("- Load average before: %s." % " / ".join("%.2f" % x for x in lf["loadavg_before"]))
        L.append("")
    h = res.get("hashing")
    if h:
        L.append("## Hashing throughput (%s files, %s, %s)" % ("{:,}".format(h["files"]), human_bytes(h["bytes"]), h["note"]))
        L.append("")
        L.append("| what | wall (median) | MB/s | files/s | peak RSS |")
        L.append("| --- | ---: | ---: | ---: | ---: |")
        for k in ("assetpub_plan", "b3sum_parallel", "b3sum", "sha384_parallel", "assetpub_collector"):
            e = h.get(k)
            if not e:
                continue
            if e.get("status") != "ok":
                L.append("| %s | %s: %s | | | |" % (e.get("what", k), e.get("status"), (e.get("reason") or "")[:200].replace("|", "/")))
                continue
            L.append("| %s | %s | %.1f | {:,} | %.0f MiB |".format(e["files_per_s"]) % (
                e["what"], human_secs(e["median_s"]), e["mb_per_s"], e["peak_rss_kb"] / 1024))
        L.append("")
        ap_h = h.get("assetpub_plan", {})
        if ap_h.get("status") == "ok":
            for k in ("b3sum_parallel", "b3sum"):
                if h.get(k, {}).get("status") == "ok":
                    L.append("- the whole `assetpub plan` from a new state DB runs at **%.0f%%** of the throughput of b3sum %s." % (
                        100 * ap_h["mb_per_s"] / h[k]["mb_per_s"],
                        "over all %d cores (the comparison the goal is set against)" % h.get("cores", 0) if k == "b3sum_parallel"
                        else "as one process"))
            tm = ap_h.get("timings") or []
            if tm:
                med = {k: statistics.median([x.get(k, 0) for x in tm]) for k in ("walk_ms", "hash_ms", "prepare_ms")}
                L.append("- inside that plan (median `timings`): walk %d ms, hash %d ms, prepare %d ms." % (
                    med["walk_ms"], med["hash_ms"], med["prepare_ms"]))
            floor = hash_floor(h)
            if floor:
                L.append("- " + floor + ".")
        L.append("")
        L.append("Every process is pinned to the same CPU set (`%s`) and the order of the processes rotates every round; "
                 "load average before: %s." % (h.get("pinned", "?"), " / ".join("%.2f" % x for x in h.get("loadavg_before", []))))
        L.append("")
    if res.get("budget_note"):
        L.append("Note: " + res["budget_note"] + ".")
        L.append("")
    if res.get("missing"):
        L.append("Not run: " + "; ".join("%s (%s)" % kv for kv in res["missing"].items()))
        L.append("")
    return "\n".join(L).replace("\n\n\n", "\n\n") + "\n"


SCENARIO_NOTES = {
    1: "Every run publishes the whole site into a new, empty bucket (assetpub with a new state DB).",
    2: "The same tree published again into the bucket of scenario 1, after one unmeasured republish by each tool (for "
       "assetpub, the first republish after publishing just-written files re-hashes those written within 2 s of that "
       "publish, and then remembers the tree).",
    3: "Before each run a new set of files is rewritten with new content (bench/gen_site.py --mutate, a new --round "
       "each time); every tool then publishes it into its bucket.",
    4: "assetpub `plan`; `aws s3 sync --dryrun`, `rclone sync --dry-run`, `s3cmd sync --dry-run`.",
    5: "Before each run every file's mtime is set to now (as a fresh checkout does) and assetpub's state DB is "
       "deleted; the content and the bucket are what the previous scenario left. Peers keep no state anyway.",
    7: "Before each round one page (a stable key) gets a comment appended, every file's mtime is set to now (as a fresh "
       "checkout does) and assetpub's state DB is deleted; every tool then publishes into the bucket it published "
       "before. The line per tool below splits its requests into the objects it uploaded and the rest.",
    8: "Before each round the generator rewrites the same share of files as scenario 3 (a new set every round); "
       "assetpub then publishes the tree as a new preview (`publish --preview bench-N`) of the bucket it has been "
       "publishing to. Only the changed files' bytes should be sent; every other object is copied server-side "
       "from the live site's (request body bytes against the changed bytes). The peers have no previews.",
    6: "assetpub publishes into its own bucket. The peers share one bucket seeded once by `rclone sync --checksum` "
       "(a no-op writes nothing, and the request counts show whether a tool wrote anyway); seeding each peer's own "
       "bucket would take longer than the whole run. A run over the cap is stopped and reported as capped.",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 run, 1,000 files, a 5,000-file large tree")
    ap.add_argument("--runs", type=int, help="runs per cell (default 3; 1 with --quick)")
    ap.add_argument("--big-runs", type=int, default=1, help="runs of the large-tree no-op (default 1)")
    ap.add_argument("--files", type=int, help="files in the site (default 10000; 1000 with --quick)")
    ap.add_argument("--big-files", type=int, help="files in the large tree (default 100000; 5000 with --quick)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--change-pct", type=float, default=1.0, help="percent of files changed in scenario 3 (default 1)")
    ap.add_argument("--scenarios", default="1,2,3,4,5,6,7,8",
                    help="comma-separated scenario numbers (default all: 1-8; 8 previews the bucket scenario 1 filled)")
    ap.add_argument("--latency-ms", type=float, default=25,
                    help="the latency set: scenarios run again through a proxy that holds every request this long "
                         "(default 25; 0 skips the set)")
    ap.add_argument("--latency-scenarios", default="1,2,3,7",
                    help="which scenarios the latency set runs (default 1,2,3,7; recorded as 11,12,13,17)")
    ap.add_argument("--latency-tools", default="assetpub,rclone-checksum,rclone,aws",
                    help="tools in the latency set (default: every tool with a concurrency setting, at 32)")
    ap.add_argument("--moto-scenarios", default="1,7",
                    help="scenarios run again on moto, which enforces conditional writes as AWS S3 does (default 1,7; "
                         "recorded as 21,27; empty skips the set)")
    ap.add_argument("--moto-tools", default="assetpub,rclone-checksum,s3cmd",
                    help="tools in the moto set (default: assetpub and the peers that do scenario 7 in 11 requests)")
    ap.add_argument("--moto", default=shutil.which("moto_server") or "moto_server", help="the moto_server binary")
    ap.add_argument("--no-direct-cold", dest="direct_cold", action="store_false",
                    help="skip the cold publish straight to Garage (requests from its /metrics)")
    ap.add_argument("--tools", default=",".join(TOOL_ORDER), help="comma-separated: %s" % ",".join(TOOL_ORDER))
    ap.add_argument("--fresh-mtimes", choices=["now", "keep"], default="now",
                    help="scenario 5: set every mtime to now, as a fresh checkout does (default), or keep them")
    ap.add_argument("--no-hash-bench", dest="hash_bench", action="store_false", help="skip the hashing throughput part")
    ap.add_argument("--no-large-file", dest="large_file", action="store_false",
                    help="skip the large text file part (a 5 MB stylesheet against the brotli tool)")
    ap.add_argument("--assetpub", default=str(REPO / "target" / "release" / "assetpub"), help="the assetpub binary")
    ap.add_argument("--assetpub-target", choices=["s3", "file"], default="s3",
                    help="publish assetpub to the S3 server (default) or to a local directory (a plumbing check)")
    ap.add_argument("--garage", default=shutil.which("garage") or os.path.expanduser("~/.cargo/bin/garage"))
    ap.add_argument("--garage-db", choices=["lmdb", "sqlite"], default="lmdb",
                    help="Garage's metadata engine (default lmdb, Garage's own default)")
    ap.add_argument("--cap", type=float, default=900, help="seconds before any one run is stopped (default 900)")
    ap.add_argument("--big-cap", type=float, help="cap of a large-tree no-op run (default 180 s; 60 with --quick)")
    ap.add_argument("--big-setup-cap", type=float, default=900, help="cap of the large-tree setup publishes (default 900 s)")
    ap.add_argument("--repeat-max-ratio", type=float, default=2,
                    help="a peer whose first run takes over this many times the fastest peer's is not repeated "
                         "(default 2; 0 repeats every peer)")
    ap.add_argument("--repeat-max-secs", type=float, default=30,
                    help="a tool whose first run of a scenario takes longer is not repeated (default 30)")
    ap.add_argument("--budget", type=float, default=2400,
                    help="seconds the whole run should take; repeats are skipped past it (default 2400)")
    ap.add_argument("--keep-data", action="store_true", help="keep Garage's data in bench/work/garage after the run")
    ap.add_argument("--proxy-log", action="store_true", help="log every request to bench/work/logs/requests.tsv")
    ap.add_argument("--output", help="results file name without extension (default latest)")
    ap.add_argument("--render", metavar="JSON", help="only write the .md of an earlier run's results JSON next to it")
    a = ap.parse_args(argv)
    if a.render:
        res = json.loads(Path(a.render).read_text())
        Path(a.render).with_suffix(".md").write_text(render_markdown(res, a))
        return 0
    a.runs = a.runs or (1 if a.quick else 3)
    a.files = a.files or (1000 if a.quick else 10000)
    a.big_files = a.big_files or (5000 if a.quick else 100000)
    a.big_cap = a.big_cap or (60 if a.quick else 180)
    a.scenarios = sorted({int(s) for s in a.scenarios.split(",") if s.strip()})
    a.latency_scenarios = sorted({int(s) for s in a.latency_scenarios.split(",") if s.strip()})
    a.moto_scenarios = sorted({int(s) for s in a.moto_scenarios.split(",") if s.strip()})
    if any(s not in (1, 7) for s in a.moto_scenarios):
        ap.error("--moto-scenarios: only 1 and 7")
    a.moto_tools = [t.strip() for t in a.moto_tools.split(",") if t.strip()]
    if any(s not in (1, 2, 3, 7) for s in a.latency_scenarios):
        ap.error("--latency-scenarios takes 1, 2, 3 and 7")
    a.latency_tools = [t.strip() for t in a.latency_tools.split(",") if t.strip()]
    a.tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    bad = [t for t in a.tools + a.latency_tools + a.moto_tools if t not in TOOL_ORDER]
    if bad:
        ap.error("unknown tool(s): %s" % ", ".join(bad))
    if not os.path.exists(a.garage):
        ap.error("garage not found (cargo install garage --locked)")
    if not os.path.exists("/usr/bin/time"):
        ap.error("/usr/bin/time not found (apt-get install time)")
    if a.moto_scenarios and not shutil.which(a.moto):
        ap.error("moto_server not found (pip install 'moto[server]'), or skip the set with --moto-scenarios ''")
    return Bench(a).main()


if __name__ == "__main__":
    sys.exit(main())
