#!/usr/bin/python3
"""Opens samplerctl's HTML traces in headless Chromium (Debian's `chromium`).

For the demo generation (60 tokens, every mode, text that needs escaping) at
a wide and a narrow window, and for pages of 1 and 0 tokens, the page must
load without any console message or script error and, once its scripts ran,
hold one token span and one scatter point per token (counted in the DOM that
--dump-dom prints, and in the counts the page's script writes on #trace).
Opening the demo at #tip=11 must show token 11's tooltip with its text as
text. Screenshots land in --out (trace_demo.png, trace_demo_tooltip.png,
trace_demo_narrow.png) to look at.

Exit status: 0 passed, 1 failed, 77 skipped (no chromium installed).
"""
import argparse
import html.parser
import os
import shutil
import struct
import subprocess
import sys
import tempfile

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-quic",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
]
TIMEOUT_S = 120


class PageDom(html.parser.HTMLParser):
    """What the checks need from a dumped DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = None            # attributes of <main id="trace">
        self.token_spans = 0        # <span class="tok ...">
        self.points = 0             # <circle class="pt ...">
        self.scripts = 0            # <script> elements
        self.timeline_svgs = 0
        self.scatter_svgs = 0
        self.tooltip = None         # attributes of #tooltip
        self.tooltip_text = []
        self._tooltip_depth = 0
        self.errors_text = []
        self._in_errors = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "main" and a.get("id") == "trace":
            self.root = a
        if tag == "span" and "tok" in classes:
            self.token_spans += 1
        if tag == "circle" and "pt" in classes:
            self.points += 1
        if tag == "script":
            self.scripts += 1
        if tag == "svg" and a.get("aria-label") == "per-token timeline":
            self.timeline_svgs += 1
        if tag == "svg" and a.get("aria-label") == "entropy-varentropy scatter":
            self.scatter_svgs += 1
        if self._tooltip_depth:
            self._tooltip_depth += 1
        elif a.get("id") == "tooltip":
            self.tooltip = a
            self._tooltip_depth = 1
        if a.get("id") == "errors":
            self._in_errors = 1

    def handle_endtag(self, tag):
        if self._tooltip_depth:
            self._tooltip_depth -= 1
        if self._in_errors and tag == "div":
            self._in_errors = 0

    def handle_data(self, data):
        if self._tooltip_depth:
            self.tooltip_text.append(data)
        if self._in_errors:
            self.errors_text.append(data)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(chromium, url, extra):
    profile = tempfile.mkdtemp(prefix="trace_browser_profile_")
    try:
        proc = subprocess.run(
            [chromium] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + extra + [url],
            capture_output=True, timeout=TIMEOUT_S)
        return proc.returncode, proc.stdout.decode("utf-8", "replace"), \
            proc.stderr.decode("utf-8", "replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def console_lines(stderr):
    """Console messages and uncaught exceptions in Chromium's log."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def expect(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print("FAIL: " + what, flush=True)


def check_page(checks, chromium, page, tokens, window, label):
    url = "file://" + os.path.abspath(page)
    rc, dom, stderr = run_chromium(chromium, url,
                                   ["--window-size=%d,%d" % window, "--dump-dom"])
    checks.expect(rc == 0, "%s: chromium exited %d" % (label, rc))
    console = console_lines(stderr)
    checks.expect(not console, "%s: console messages: %s" % (label, console[:5]))
    d = PageDom()
    d.feed(dom)
    checks.expect(d.root is not None, "%s: no <main id=trace> in the DOM" % label)
    root = d.root or {}
    checks.expect(root.get("data-errors") == "0",
                  "%s: data-errors=%r (%s)" % (label, root.get("data-errors"),
                                               "".join(d.errors_text).strip()))
    checks.expect(root.get("data-tokens") == str(tokens),
                  "%s: data-tokens=%r, want %d" % (label, root.get("data-tokens"), tokens))
    checks.expect(root.get("data-points") == str(tokens),
                  "%s: data-points=%r, want %d" % (label, root.get("data-points"), tokens))
    checks.expect(d.token_spans == tokens,
                  "%s: %d token spans in the DOM, want %d" % (label, d.token_spans, tokens))
    checks.expect(d.points == tokens,
                  "%s: %d scatter points in the DOM, want %d" % (label, d.points, tokens))
    checks.expect(d.scripts == 2, "%s: %d <script> elements, want 2 (the page's own)"
                  % (label, d.scripts))
    checks.expect(d.scatter_svgs == 1 and d.timeline_svgs == 1,
                  "%s: %d scatter and %d timeline charts, want 1 and 1"
                  % (label, d.scatter_svgs, d.timeline_svgs))
    print("%s: %d token spans, %d points, %s" % (
        label, d.token_spans, d.points, "no console messages" if not console else "CONSOLE"),
        flush=True)
    return d


def screenshot(checks, chromium, url, path, window, label):
    if os.path.exists(path):
        os.remove(path)
    rc, _, stderr = run_chromium(chromium, url, ["--window-size=%d,%d" % window,
                                                 "--screenshot=" + path])
    console = console_lines(stderr)
    checks.expect(rc == 0, "%s: chromium exited %d" % (label, rc))
    checks.expect(not console, "%s: console messages: %s" % (label, console[:5]))
    size = png_size(path) if os.path.exists(path) else None
    checks.expect(size == window, "%s: screenshot %s is %r, want a %dx%d PNG"
                  % (label, path, size, window[0], window[1]))
    # A blank page compresses to a few KB; the drawn one is far larger.
    checks.expect(os.path.exists(path) and os.path.getsize(path) > 40000,
                  "%s: screenshot %s looks blank" % (label, path))
    print("%s: screenshot %s" % (label, path), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", required=True, help="the trace_demo binary")
    parser.add_argument("--out", required=True, help="folder for pages and screenshots")
    args = parser.parse_args()

    chromium = find_chromium()
    if chromium is None:
        print("SKIP: no chromium on PATH (Debian: apt-get install -y chromium; "
              "scripts/setup.sh installs it)")
        return 77
    os.makedirs(args.out, exist_ok=True)

    pages = {}
    for name, keep in (("demo", None), ("one", 1), ("empty", 0)):
        prefix = os.path.join(args.out, name)
        cmd = [args.demo, prefix] + ([] if keep is None else [str(keep)])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(prefix + ".jsonl", encoding="utf-8") as f:
            pages[name] = (prefix + ".html", sum(1 for _ in f))

    checks = Checks()
    demo_page, demo_tokens = pages["demo"]
    checks.expect(demo_tokens == 60, "demo: %d JSON lines, want 60" % demo_tokens)
    check_page(checks, chromium, demo_page, demo_tokens, (1400, 1800), "demo 1400px")
    check_page(checks, chromium, demo_page, demo_tokens, (480, 1200), "demo 480px")
    check_page(checks, chromium, pages["one"][0], 1, (1000, 900), "one token")
    check_page(checks, chromium, pages["empty"][0], 0, (1000, 900), "no tokens")

    # The tooltip of token 11 ("<script>", resample), opened by #tip=11.
    url = "file://" + os.path.abspath(demo_page)
    rc, dom, stderr = run_chromium(chromium, url + "#tip=11",
                                   ["--window-size=1400,1800", "--dump-dom"])
    d = PageDom()
    d.feed(dom)
    tip = "".join(d.tooltip_text)
    checks.expect(d.tooltip is not None and "hidden" not in d.tooltip,
                  "tooltip: #tooltip hidden or missing after #tip=11")
    checks.expect('"<script>"' in tip and "resample" in tip and "temperature" in tip,
                  "tooltip: text %r lacks the token's text, mode or parameters" % tip[:200])
    checks.expect(d.scripts == 2, "tooltip: %d <script> elements, want 2" % d.scripts)
    checks.expect(not console_lines(stderr), "tooltip: console messages")
    print("tooltip: %s" % tip[:90].replace("\n", " "), flush=True)

    screenshot(checks, chromium, url, os.path.join(args.out, "trace_demo.png"),
               (1400, 1800), "screenshot")
    screenshot(checks, chromium, url + "#tip=11",
               os.path.join(args.out, "trace_demo_tooltip.png"), (1400, 1800),
               "tooltip screenshot")
    screenshot(checks, chromium, url, os.path.join(args.out, "trace_demo_narrow.png"),
               (480, 2600), "narrow screenshot")

    print("%d passed, %d failed" % (checks.passed, len(checks.failures)))
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
