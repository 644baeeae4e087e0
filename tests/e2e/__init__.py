"""Tests of the page: its routes (TestClient) and the page itself in a real browser (Playwright)."""
