//! Tokio runtime for pyro-rs: connection framing, the Proxy (async and blocking), name
//! server location and PYRO_* configuration.
