//! The Rust client against Pyro4's own test echo server (a real Python process).

use interop_tests::echo_server;

/// Whether the peer is the Python implementation (some Pyro4 limits differ).
const PYTHON_PEER: bool = true;

include!("scenarios/echo.rs");
