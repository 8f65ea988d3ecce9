//! The Rust client against pyro-echo, the Rust echo server: the same scenarios as
//! tests/echo.rs, so Rust talks to Rust as well as to Python.

use interop_tests::rust_echo_server as echo_server;

/// Whether the peer is the Python implementation (some Pyro4 limits differ).
const PYTHON_PEER: bool = false;

include!("scenarios/echo.rs");
