//! Helpers for Vigil's end-to-end tests, which live in `tests/`.
