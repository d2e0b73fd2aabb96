"""Check the built book as a reader sees it, in headless Chromium (selenium).

Serves _build/html on a loopback HTTP server and opens every page: every image loads, every
same-site link answers 200 and its #anchor exists, the search page finds "convolution", the
sidebar lists every chapter of _toc.yml, and math renders where MathJax's CDN is reachable
(skipped offline, with the reason printed). One screenshot per page goes to _build/screenshots/.

Usage: python scripts/check_book.py [--html _build/html]   (exit status 1 on any failure)
Needs: Debian's chromium and chromium-driver (apt-get install chromium chromium-driver), selenium.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import yaml

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = ("_static", "_sources", "_images", "_sphinx_design_static", "_panels_static")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would drown the report
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # the browser cancelled a download


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a daemon thread; return server and URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def pages(html: Path) -> list[str]:
    """Every HTML page of the book, relative to the build folder."""
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if not p.relative_to(html).parts[0] in SKIP_DIRS)


def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every file of _toc.yml (root first), without extension."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver")
    service = Service(executable_path=driver_path) if driver_path else Service()
    return webdriver.Chrome(options=options, service=service)


def wait_for(driver, script: str, timeout: float = 15.0, interval: float = 0.25):
    """Poll a JavaScript expression until it is truthy; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Checker:
    def __init__(self, html: Path, base: str, driver, shots: Path):
        self.html, self.base, self.driver, self.shots = html, base, driver, shots
        self.failures: list[str] = []
        self._status: dict[str, int] = {}
        self._ids: dict[str, set[str]] = {}
        self.skipped: set[str] = set()

    @functools.cache
    def reachable(self, url: str) -> bool:
        """Whether an external URL answers at all (offline machines skip external content)."""
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
            return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print("  FAIL", message)

    def fetch(self, url: str) -> int:
        if url not in self._status:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    self._status[url] = response.status
                    if response.headers.get_content_type() == "text/html":
                        text = response.read().decode("utf-8", "replace")
                        self._ids[url] = set(re.findall(r'\bid="([^"]+)"', text))
            except urllib.error.HTTPError as exc:
                self._status[url] = exc.code
        return self._status[url]

    def check_page(self, page: str) -> None:
        d = self.driver
        d.get(self.base + page)
        wait_for(d, "document.readyState === 'complete'")
        # images: force lazy ones to load, then every <img> must have decoded pixels
        d.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager');")
        wait_for(d, "Array.from(document.images).every(i => i.complete)", timeout=10)
        broken = d.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.src);")
        for src in broken:
            if src.startswith(self.base) or self.reachable(src):
                self.fail(f"{page}: image does not load: {src}")
            elif src not in self.skipped:
                self.skipped.add(src)
                print(f"  skip external image (not reachable from here): {src}")
        # links: same-site targets answer 200, anchors exist
        hrefs = d.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);")
        for href in sorted(set(hrefs)):
            if not href.startswith(self.base):
                continue
            url, fragment = urldefrag(href)
            status = self.fetch(url)
            if status != 200:
                self.fail(f"{page}: link {href[len(self.base):]} answers {status}")
            elif fragment and url in self._ids and fragment not in self._ids[url]:
                self.fail(f"{page}: anchor #{fragment} not found in {url[len(self.base):]}")
        name = re.sub(r"[^\w.-]+", "_", page.removesuffix(".html")) + ".png"
        d.save_screenshot(str(self.shots / name))
        print(f"  ok   {page}: {len(hrefs)} links, {d.execute_script('return document.images.length')} images")

    def check_search(self, term: str = "convolution") -> None:
        d = self.driver
        d.get(urljoin(self.base, f"search.html?q={term}"))
        count = wait_for(d, "document.querySelectorAll('#search-results li').length", timeout=30)
        d.save_screenshot(str(self.shots / "search_convolution.png"))
        if not count:
            self.fail(f"search page: no results for {term!r}")
        else:
            print(f"  ok   search for {term!r}: {count} results")

    def check_sidebar(self) -> None:
        d = self.driver
        d.get(self.base + "index.html")
        wait_for(d, "document.readyState === 'complete'")
        links = d.execute_script(
            "return Array.from(document.querySelectorAll('.bd-sidebar-primary a, nav a'))"
            ".map(a => a.href);")
        paths = {urlparse(h).path.lstrip("/") for h in links if h.startswith(self.base)}
        # the root page is the landing page itself (index.html); the others must be linked
        for f in toc_files()[1:]:
            if f + ".html" not in paths:
                self.fail(f"sidebar does not list {f} (from _toc.yml)")
        print(f"  ok   sidebar checked against {len(toc_files()) - 1} chapters of _toc.yml")

    def check_math(self, pages_with_math: list[str]) -> None:
        d = self.driver
        if not pages_with_math:
            print("  skip math: no page has math")
            return
        d.get(self.base + pages_with_math[0])
        src = d.execute_script(
            "const s = Array.from(document.scripts).find(s => /mathjax/i.test(s.src));"
            "return s ? s.src : null;")
        if not src:
            self.fail(f"{pages_with_math[0]}: no MathJax script")
            return
        try:
            urllib.request.urlopen(src, timeout=5).close()
        except (urllib.error.URLError, OSError) as exc:
            print(f"  skip math rendering: MathJax is not reachable from here ({src}: {exc})")
            return
        for page in pages_with_math:
            d.get(self.base + page)
            rendered = wait_for(d, "document.querySelectorAll('mjx-container').length", timeout=20)
            if not rendered:
                self.fail(f"{page}: math did not render (no mjx-container)")
        print(f"  ok   math rendered on {len(pages_with_math)} pages")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"no book at {args.html}: build it first (bash scripts/build_book.sh)")
        return 1
    shots = args.html.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.html)
    driver = browser()
    try:
        checker = Checker(args.html, base, driver, shots)
        all_pages = pages(args.html)
        print(f"== browser check: {len(all_pages)} pages at {base}")
        for page in all_pages:
            checker.check_page(page)
        checker.check_search()
        checker.check_sidebar()
        math_pages = [p for p in all_pages
                      if re.search(r'class="math', (args.html / p).read_text(errors="replace"))]
        checker.check_math(math_pages)
    finally:
        driver.quit()
        server.shutdown()
    print(f"== browser check: {len(checker.failures)} failures; screenshots in {shots}")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
