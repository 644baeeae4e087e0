"""Test hooks kept out of the page's code: installed in the browser before the page loads."""

from __future__ import annotations

from playwright.sync_api import Page

# Every WebSocket the page opens is kept in window.__sockets, so a test can send through the page's own
# socket as any client could (the page's answers then show as they would for its own messages).
_KEEP_SOCKETS = """(() => {
  const Native = window.WebSocket;
  const kept = [];
  window.__sockets = kept;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      kept.push(this);
    }
  };
})();"""


def keep_sockets(page: Page) -> None:
    """Call before page.goto: the page's websockets become reachable from send_raw."""
    page.add_init_script(_KEEP_SOCKETS)


def send_raw(page: Page, message: str) -> None:
    """Send a text message through the page's newest websocket."""
    page.evaluate("text => window.__sockets.at(-1).send(text)", message)
