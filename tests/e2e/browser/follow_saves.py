"""A real browser on a `live-wasm --serve` page, for tests/e2e/serve_browser.rs.

Usage: follow_saves.py URL

Opens URL in Debian's chromium (headless, through Playwright) and follows the
saves the Rust test makes, talking over stdin/stdout one line at a time:

  prints `saw MARK-000000`  the first version's page is shown; the test saves MARK-000001
  prints `saw MARK-000001`  the page reloaded by itself; the test saves garbage
  prints `overlay`          #live-wasm-overlay appeared; the test saves MARK-000003
  prints `saw MARK-000003`  the overlay is gone and the newest version is shown
  prints `done`

After each printed line it waits for a line on stdin (the test's save made).
Each wait in the browser is bounded; a failure prints `FAILED: why` and exits 1.
Nothing is done in the page: it must follow the saves by itself.
"""

import sys

from playwright.sync_api import sync_playwright

WAIT_MS = 20_000

ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def say(line):
    print(line, flush=True)


def saved():
    """Waits for the test to say it saved."""
    if not sys.stdin.readline():
        raise SystemExit("the test went away")


def main():
    url = sys.argv[1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = browser.new_page()
            page.goto(url, timeout=WAIT_MS)
            heading = page.locator("h1")

            def shows(mark):
                page.wait_for_function(
                    "mark => document.querySelector('h1') &&"
                    " document.querySelector('h1').textContent === mark",
                    arg=mark,
                    timeout=WAIT_MS,
                )
                say(f"saw {heading.text_content()}")

            shows("MARK-000000")
            saved()
            shows("MARK-000001")
            saved()
            page.wait_for_selector("#live-wasm-overlay", state="visible", timeout=WAIT_MS)
            # Still the last good version under it.
            if heading.text_content() != "MARK-000001":
                raise RuntimeError(f"under the overlay: {heading.text_content()}")
            say("overlay")
            saved()
            shows("MARK-000003")
            page.wait_for_selector("#live-wasm-overlay", state="detached", timeout=WAIT_MS)
            say("done")
        finally:
            browser.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # noqa: BLE001: any failure is the test's to report
        say(f"FAILED: {type(err).__name__}: {err}")
        sys.exit(1)
