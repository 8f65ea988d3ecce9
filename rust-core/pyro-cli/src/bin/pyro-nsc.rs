//! pyro-nsc: name server control tool (mirrors Pyro4's nsc).
fn main() {}
