"""Benchmark the WS sidecar over loopback from the local exchange and print the numbers.

Starts ``python -m exchange.sim`` (real-time clock, accelerated, short tick) and the release sidecar
binary, both on 127.0.0.1, then long-polls ``wait_mids`` for ``--seconds`` and reports:

* WebSocket messages per second handled by the sidecar (its ``ws_stats.frames``), next to the target
  rate (``--busy-rate`` messages/s per channel x channels x 10);
* frame-to-client latency p50/p99: from the moment the sidecar read the newest allMids/bbo frame
  (``mids_recv_ns``/``bbo_recv_ns``, wall clock) to the moment this client parsed the answer;
* the sidecar's CPU (percent of one core) and RSS from /proc.

Every loop is bounded by ``--seconds`` and start-up deadlines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exchange.sidecar import SidecarClient, SidecarUnavailable  # noqa: E402

BINARY = ROOT / "target" / "release" / "ai-quant-sidecar"
DATA_DIR = ROOT.parent / "shared" / "data" / "hyperliquid" / "futures"
SYMBOLS = "BTC,ETH,SOL,XRP,DOGE,BNB,HYPE,SUI,ENA,kPEPE"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_kib(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--symbols", default=SYMBOLS)
    ap.add_argument("--tick-ms", type=int, default=10, help="venue push period")
    ap.add_argument("--speed", type=float, default=120.0, help="replay speed (prices move every tick)")
    ap.add_argument("--busy-rate", type=float, default=2.0, help="a busy market's pushes/s per channel")
    args = ap.parse_args()
    if not BINARY.exists():
        print(f"build the sidecar first: cargo build --release -p ai-quant-sidecar ({BINARY} missing)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-sidecar-"))
    port = free_port()
    syms = [s for s in args.symbols.split(",") if s]
    venue = subprocess.Popen(
        [sys.executable, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(port), "--symbols",
         ",".join(syms), "--speed", str(args.speed), "--tick-ms", str(args.tick_ms), "--rate-limit", "0",
         "--data-dir", str(DATA_DIR), "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sock = tmp / "s.sock"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AI_QUANT_WS_SIDECAR_SOCK": str(sock),
        "AI_QUANT_EXCHANGE_URL": f"http://127.0.0.1:{port}",
        "AI_QUANT_CANDLES_DIR": str(tmp / "candles"),
        "AI_QUANT_SIDECAR_SYMBOLS": ",".join(syms),
        "AI_QUANT_SIDECAR_INTERVALS": "1m",
    }
    sidecar: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 90
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(
                    urllib.request.Request(f"http://127.0.0.1:{port}/info", data=b'{"type":"allMids"}'),
                    timeout=2,
                ).read()
                break
            except OSError:
                time.sleep(0.3)
        else:
            print("local exchange did not start")
            return 1
        sidecar = subprocess.Popen(
            [str(BINARY), "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        with SidecarClient(sock, timeout=5) as c:
            while time.monotonic() < deadline:
                try:
                    if c.candles_ready(syms, "1m").ready and c.get_mids(syms).mids_seq > 0:
                        break
                except SidecarUnavailable:
                    pass
                time.sleep(0.2)
            time.sleep(1.0)
            s0 = c.ws_stats()
            cpu0, t0 = proc_cpu_s(sidecar.pid), time.monotonic()
            lat_us: list[float] = []
            seq = bseq = 0
            end = t0 + args.seconds
            while time.monotonic() < end:
                m = c.wait_mids(seq, after_bbo_seq=bseq, timeout_ms=1000)
                got_ns = time.time_ns()
                if m.timed_out:
                    continue
                newest = max(
                    m.mids_recv_ns if m.mids_seq > seq else 0, m.bbo_recv_ns if m.bbo_seq > bseq else 0
                )
                if newest:
                    lat_us.append((got_ns - newest) / 1000)
                seq, bseq = m.mids_seq, m.bbo_seq
            elapsed = time.monotonic() - t0
            cpu = proc_cpu_s(sidecar.pid) - cpu0
            s1 = c.ws_stats()
            rss, hwm = proc_mem_kib(sidecar.pid)
        frames = s1["frames"] - s0["frames"]
        channels = 1 + 2 * len(syms)  # allMids, bbo and 1m candle per symbol
        target = args.busy_rate * channels * 10
        print(f"sidecar benchmark: {len(syms)} symbols, {channels} channels, {elapsed:.1f} s, loopback")
        print(f"  target (10x busy: {args.busy_rate:g}/s per channel): {target:,.0f} msgs/s")
        print(
            f"  messages handled:        {frames / elapsed:,.0f} msgs/s ({frames} frames, {s1['bytes'] - s0['bytes']:,} bytes)"
        )
        print(f"  frame->client latency:   p50 {statistics.median(lat_us) if lat_us else float('nan'):.0f} us,"
              f" p99 {pct(lat_us, 99):.0f} us, max {max(lat_us, default=float('nan')):.0f} us ({len(lat_us)} samples)")  # fmt: skip
        print(f"  sidecar CPU:             {100 * cpu / elapsed:.1f} % of one core")
        print(f"  sidecar RSS:             {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB)")
        print(f"  candle rows flushed:     {s1['candle_rows_flushed'] - s0['candle_rows_flushed']}")
        if frames / elapsed < target:
            print(
                "  note: the local exchange could not push the target rate on this machine; numbers are for the rate reached"
            )
        return 0
    finally:
        for p in (sidecar, venue):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
