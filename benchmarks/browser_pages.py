"""Speed as a person feels it (issue 15): every page of every demo role, timed in chromium.

Starts `python -m mlops_core up` on a fresh demo workspace exactly as the browser tests do
(tests/e2e/conftest.py start_hub), then for each demo account, in a fresh browser context:
- open the login page, submit the form and time from the click to the settled landing page;
- click every page of that role's sidebar (hub_ui/nav.py pages_for) and time from the click to a
  settled page.

"Settled" is what a person waits for: Streamlit's script state (the status widget) is not running, no
spinner, no stale (greyed) element, the main area has content, and nothing reran for QUIET_MS after. The
time is taken in the browser (performance.now()) from the click to the moment the last run ended.

The first role to open a page pays the server's first imports and cache warm-up ("cold"); later roles
open it warm. Baseline, in the same run: a bare two-page Streamlit app (st.navigation, a title and a
line of text, a one-field form that logs in with st.rerun) served by the same Streamlit on this machine
and timed by the same code: the floor the framework sets.

Target: p95 <= 1.5 s over all page opens, login <= 1.5 s (every role).

    .venv/bin/python benchmarks/browser_pages.py [--roles alice,sara] [--repeat 1]
    .venv/bin/python benchmarks/browser_pages.py --url http://127.0.0.1:8501 --password ...   # a running hub

Besides the time, each page open prints the script runs it took, the kB Streamlit sent and the UI server's
CPU seconds (from /proc; wall time on a busy machine is inflated, CPU much less).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub_ui.nav import pages_for  # noqa: E402
from mlops_core.demo import DEMO_ACCOUNTS  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, free_port, start_hub, stop_hub  # noqa: E402

TARGET_S = 1.5
QUIET_MS = 300
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1440, "height": 900}

# Installed before any page script. Streamlit talks over one websocket in protobuf ForwardMsgs; a run
# starts with a new_session message (field 4) and ends with script_finished (field 6). The script state on
# the page cannot be used for this: a run that ends within one frame may never show "running". Each
# message is noted, with the next frame painted after it.
WATCH_JS = """
(() => {
  const h = (window.__hub = { msgs: 0, bytes: 0, starts: 0, ends: 0, lastStart: 0, lastEnd: 0,
                              lastMsg: 0, lastPaint: 0, t0: 0 });
  const fieldOf = (buf) => {  // the ForwardMsg's type: its first field other than hash (1), metadata (2)
    const b = new Uint8Array(buf);
    let i = 0;
    const varint = () => { let v = 0, s = 0, x; do { x = b[i++]; v += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80 && i < b.length); return v; };
    while (i < b.length) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag % 8;
      if ((field !== 1 && field !== 2) || wire !== 2) return field;
      const len = varint();
      i += len;
    }
    return 0;
  };
  const note = (buf) => {
    const now = performance.now(), field = fieldOf(buf);
    h.msgs += 1;
    h.bytes += buf.byteLength;
    h.lastMsg = now;
    if (field === 4) { h.starts += 1; h.lastStart = now; }
    if (field === 6) { h.ends += 1; h.lastEnd = now; }
    requestAnimationFrame(() => { h.lastPaint = performance.now(); });
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        if (ev.data instanceof ArrayBuffer) note(ev.data);
        else if (ev.data instanceof Blob) ev.data.arrayBuffer().then(note);
      });
    }
  };
})();
"""

# True once the page has settled after run number `startsBefore`: a run started after the action, the last
# run finished and nothing came for quietMs, the script is not running (the status widget), no spinner or
# stale (greyed) element is left, and the main area has content.
SETTLED_JS = """
([startsBefore, quietMs, needNav]) => {
  const h = window.__hub;
  if (!h || h.starts <= startsBefore || h.lastEnd < h.lastStart || h.lastPaint < h.lastMsg) return false;
  if (performance.now() - h.lastMsg < quietMs) return false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSpinner"], [data-stale="true"], ' +
      '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')) return false;
  if (!document.querySelector('[data-testid="stMain"] [data-testid="stElementContainer"]')) return false;
  if (needNav && !document.querySelector('[data-testid="stSidebarNav"]')) return false;
  return true;
}
"""


def settle(page, runs_before: int, *, need_nav: bool = False) -> float:
    """Wait until settled; seconds from window.__hub.t0 (set at the click) to the frame after the last message."""
    page.wait_for_function(SETTLED_JS, arg=[runs_before, QUIET_MS, need_nav], timeout=TIMEOUT_MS, polling=50)
    h = page.evaluate("window.__hub")
    return (h["lastPaint"] - h["t0"]) / 1000.0


def runs_since(page, before: int) -> int:
    return page.evaluate("window.__hub.starts") - before


def received_kb(page) -> float:
    return page.evaluate("window.__hub.bytes") / 1024.0


def runs(page) -> int:
    """Script runs started so far."""
    return page.evaluate("window.__hub.starts")


def click_timed(locator) -> None:
    """Click in the page itself, noting the time in the same tick (no Playwright round trip in the figure)."""
    locator.evaluate("(el) => { window.__hub.t0 = performance.now(); el.click(); }")


def exception_count(page) -> int:
    return page.locator('[data-testid="stException"]').count()


def open_app(page, url: str) -> float:
    """First load of the address: from navigation start to the settled login page."""
    page.goto(url)
    page.wait_for_function(SETTLED_JS, arg=[0, QUIET_MS, False], timeout=TIMEOUT_MS, polling=50)
    return page.evaluate("window.__hub.lastPaint") / 1000.0  # performance.now() counts from navigation start


def log_in(page, username: str, password: str) -> float:
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    n = runs(page)
    click_timed(page.get_by_role("button", name="Log in"))
    return settle(page, n, need_nav=True)


def nav_link(page, url_path: str, default: bool):
    nav = page.get_by_test_id("stSidebarNav")
    link = nav.locator(f'a[href$="/{url_path}"]')
    if default and link.count() == 0:
        link = nav.locator("a").first
    return link.first


def open_page(page, url_path: str, default: bool) -> float:
    n = runs(page)
    click_timed(nav_link(page, url_path, default))
    return settle(page, n)


class ServerCpu:
    """CPU seconds the UI server process (streamlit) has used, from /proc: a figure a busy machine does not
    inflate the way it inflates wall time. None where /proc or the process cannot be found."""

    def __init__(self, root_pid: int | None):
        self.pid = self._find(root_pid) if root_pid else None
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def _find(root: int) -> int | None:
        proc = Path("/proc")
        if not proc.exists():
            return None
        for d in proc.iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == root and any(c.endswith(b"hub_server.py") for c in cmd):
                return int(d.name)
        return None

    def seconds(self) -> float | None:
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th): no interpolation below the worst cases."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return s[k]


# --- the baseline: a bare Streamlit app, timed the same way ---------------------------------------------

BARE_APP = '''
import streamlit as st

def one():
    st.title("Page one")
    st.write("A line of text.")

def two():
    st.title("Page two")
    st.write("Another line.")

def login():
    st.title("Log in")
    with st.form("f"):
        name = st.text_input("Username")
        ok = st.form_submit_button("Log in")
    if ok and name:
        st.session_state["who"] = name
        st.rerun()

if "who" not in st.session_state:
    st.navigation([st.Page(login, url_path="login")], position="hidden").run()
    st.stop()
st.navigation([st.Page(one, url_path="one", default=True), st.Page(two, url_path="two")]).run()
with st.sidebar:
    st.write(st.session_state["who"])
'''


def bare_baseline(browser, repeat: int = 8) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "bare.py"
        app.write_text(textwrap.dedent(BARE_APP))
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(app),
                "--server.headless=true",
                f"--server.port={port}",
                "--server.address=127.0.0.1",
                "--browser.gatherUsageStats=false",
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            import httpx

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            logins, navs = [], []
            for _ in range(max(1, repeat // 4)):
                ctx = browser.new_context(viewport=VIEWPORT)
                ctx.add_init_script(WATCH_JS)
                page = ctx.new_page()
                open_app(page, f"http://127.0.0.1:{port}/")
                page.get_by_label("Username", exact=True).fill("someone")
                n = runs(page)
                click_timed(page.get_by_role("button", name="Log in"))
                logins.append(settle(page, n, need_nav=True))
                for i in range(repeat):
                    navs.append(open_page(page, "two", False) if i % 2 == 0 else open_page(page, "one", True))
                ctx.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return {"login_s": statistics.median(logins), "page_p50_s": statistics.median(navs), "page_p95_s": pct(navs, 0.95)}


# --- the hub ------------------------------------------------------------------------------------------


def tour(browser, hub, accounts, repeat: int, password: str) -> tuple[list[dict], list[dict]]:
    pages_rows, login_rows = [], []
    cpu = ServerCpu(hub.proc.pid if hub.proc is not None else None)
    seen: set[str] = set()
    for username, role, *_ in accounts:
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.add_init_script(WATCH_JS)
        page = ctx.new_page()
        first_load = open_app(page, hub.ui_url)
        c0, n0 = cpu.seconds(), runs(page)
        login_s = log_in(page, username, password)
        c1, login_runs = cpu.seconds(), runs(page) - n0
        login_cpu = c1 - c0 if c0 is not None and c1 is not None else None
        login_rows.append({"user": username, "role": role, "open_s": first_load, "login_s": login_s, "cpu": login_cpu})
        cpu_txt = f" ({login_cpu:.2f} s server CPU)" if login_cpu is not None else ""
        print(
            f"{username:<6} opens the hub {first_load:5.2f} s, logs in {login_s:5.2f} s, {login_runs} run(s){cpu_txt}",
            flush=True,
        )
        for r in range(repeat):
            for spec in pages_for(role):
                kb0, c0, n0 = received_kb(page), cpu.seconds(), runs(page)
                s = open_page(page, spec.url_path, spec.default)
                kb, c1, n_runs = received_kb(page) - kb0, cpu.seconds(), runs(page) - n0
                server_cpu = c1 - c0 if c0 is not None and c1 is not None else None
                cold = spec.path not in seen
                seen.add(spec.path)
                errors = exception_count(page)
                pages_rows.append(
                    {
                        "user": username,
                        "role": role,
                        "page": spec.title,
                        "s": s,
                        "cold": cold,
                        "pass": r,
                        "exceptions": errors,
                        "kb": kb,
                        "cpu": server_cpu,
                        "runs": n_runs,
                    }
                )
                flag = " cold" if cold else ""
                err = f"  EXCEPTION x{errors}" if errors else ""
                cpu_txt = f"{server_cpu:5.2f} s server CPU" if server_cpu is not None else ""
                print(f"  {spec.title:<24} {s:5.2f} s {n_runs} run(s) {kb:5.0f} kB {cpu_txt}{flag}{err}", flush=True)
        ctx.close()
    return pages_rows, login_rows


def print_table(rows: list[dict], users: list[str]) -> None:
    titles = list(dict.fromkeys(r["page"] for r in rows))
    by = {}
    for r in rows:
        by.setdefault((r["page"], r["user"]), []).append(r["s"])
    w = max(len(t) for t in titles)
    print("\n" + "page".ljust(w) + " | " + " | ".join(u.rjust(6) for u in users) + " |  max")
    print("-" * w + "-+-" + "-+-".join("-" * 6 for _ in users) + "-+------")
    for t in titles:
        cells = [by.get((t, u)) for u in users]
        vals = [max(c) for c in cells if c]
        print(
            t.ljust(w)
            + " | "
            + " | ".join((f"{max(c):6.2f}" if c else "     —") for c in cells)
            + f" | {max(vals):5.2f}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roles", default="", help="comma-separated demo usernames (default: all five)")
    ap.add_argument("--repeat", type=int, default=1, help="passes over each role's pages (default 1)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--url", help="time a hub that is already running here instead of starting a fresh one")
    ap.add_argument("--password", default=DEMO_PASSWORD, help="the demo accounts' password (with --url)")
    ap.add_argument("--up-pid", type=int, help="with --url: pid of its `mlops_core up`, for the server CPU column")
    args = ap.parse_args()
    wanted = {u for u in args.roles.split(",") if u}
    accounts = [a for a in DEMO_ACCOUNTS if not wanted or a[0] in wanted]
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM}", file=sys.stderr)
        return 2

    from playwright.sync_api import sync_playwright

    if args.url:
        hub = SimpleNamespace(
            ui_url=args.url.rstrip("/"), proc=SimpleNamespace(pid=args.up_pid) if args.up_pid else None
        )
        print(f"timing the hub at {hub.ui_url} (already running: not a cold start); load {_load()}", flush=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench_browser_"))
        t0 = time.monotonic()
        hub = start_hub(tmp)
        print(f"hub up on a fresh demo workspace in {time.monotonic() - t0:.0f} s; load {_load()}", flush=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            base = None if args.no_baseline else bare_baseline(browser)
            if base:
                print(
                    f"bare Streamlit app: login {base['login_s']:.2f} s, page p50 {base['page_p50_s']:.2f} s, "
                    f"p95 {base['page_p95_s']:.2f} s",
                    flush=True,
                )
            rows, logins = tour(browser, hub, accounts, args.repeat, args.password)
            browser.close()
    finally:
        if not args.url:
            stop_hub(hub)
    print_table(rows, [a[0] for a in accounts])
    all_s = [r["s"] for r in rows]
    cold = [r["s"] for r in rows if r["cold"]]
    warm = [r["s"] for r in rows if not r["cold"]]
    login_s = [r["login_s"] for r in logins]
    p50, p95 = statistics.median(all_s), pct(all_s, 0.95)
    worst = max(rows, key=lambda r: r["s"])
    errors = sum(r["exceptions"] for r in rows)
    print(
        f"\n{len(rows)} page opens: p50 {p50:.2f} s, p95 {p95:.2f} s, worst {worst['s']:.2f} s "
        f"({worst['page']} as {worst['user']}); cold (first open of a page) p50 {statistics.median(cold):.2f} s "
        f"max {max(cold):.2f} s; warm p50 {statistics.median(warm) if warm else float('nan'):.2f} s"
    )
    print(f"login: median {statistics.median(login_s):.2f} s, worst {max(login_s):.2f} s")
    print(f"pages showing a Streamlit exception: {errors}")
    met_pages, met_login = p95 <= TARGET_S, max(login_s) <= TARGET_S
    print(
        f"target p95 <= {TARGET_S} s: {'met' if met_pages else 'NOT met'}; "
        f"login <= {TARGET_S} s: {'met' if met_login else 'NOT met'}; load {_load()}"
    )
    figures = [
        {
            "figure": f"page open in chromium, p95 of {len(rows)} (page x role)",
            "ours": round(p95, 3),
            "baseline": round(base["page_p95_s"], 3) if base else None,
            "baseline_name": "bare Streamlit page",
            "unit": "s",
            "target": f"<= {TARGET_S}",
            "met": met_pages and errors == 0,
        },
        {
            "figure": "page open in chromium, p50",
            "ours": round(p50, 3),
            "baseline": round(base["page_p50_s"], 3) if base else None,
            "baseline_name": "bare Streamlit page",
            "unit": "s",
            "target": "—",
            "met": True,
        },
        {
            "figure": f"login to settled landing page, worst of {len(logins)} roles",
            "ours": round(max(login_s), 3),
            "baseline": round(base["login_s"], 3) if base else None,
            "baseline_name": "bare Streamlit form + st.rerun",
            "unit": "s",
            "target": f"<= {TARGET_S}",
            "met": met_login,
        },
    ]
    print(json.dumps({"benchmark": "browser_pages", "figures": figures}))
    return 0


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
