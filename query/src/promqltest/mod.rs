//! Runner for Prometheus test scripts.
