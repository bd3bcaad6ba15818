"""Helpers the tests share: tiny models and items, stored rows, the browser, real-model runs."""
