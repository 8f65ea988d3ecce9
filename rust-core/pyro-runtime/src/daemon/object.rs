//! The `Pyro.Daemon` object every daemon serves (Pyro4's `DaemonObject`).

use super::dispatch::{
    missing_method, unknown_attr, Args, CallContext, CallFuture, Dispatch, Fault, Metadata, Outcome,
};
use super::{DaemonHandle, Shared};
use pyro_codec::{Dict, Value};
use std::sync::{Arc, Weak};

const METHODS: &[&str] = &[
    "ping",
    "registered",
    "info",
    "get_metadata",
    "get_next_stream_item",
    "close_stream",
];

/// Holds the daemon weakly: the daemon owns its registry, which owns this object.
pub(crate) struct DaemonObject {
    daemon: Weak<Shared>,
}

impl DaemonObject {
    pub(crate) fn new(daemon: Weak<Shared>) -> Self {
        DaemonObject { daemon }
    }

    fn handle(&self) -> Result<DaemonHandle, Fault> {
        self.daemon
            .upgrade()
            .map(|shared| DaemonHandle { shared })
            .ok_or_else(|| Fault::pyro("DaemonError", "daemon is gone"))
    }

    fn run(
        &self,
        ctx: CallContext,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<Value, Fault> {
        let handle = self.handle()?;
        let args = Args {
            owner: Arc::from("DaemonObject"),
            method: method.to_string(),
            positional: args,
            kwargs,
            ctx,
        };
        match method {
            "ping" => {
                args.bind(&[])?;
                Ok(Value::None)
            }
            "registered" => {
                args.bind(&[])?;
                Ok(Value::List(
                    handle.registered().into_iter().map(Value::Str).collect(),
                ))
            }
            "info" => {
                args.bind(&[])?;
                Ok(Value::Str(handle.info()))
            }
            "get_metadata" => {
                let mut v = args.bind_optional(&["objectId", "as_lists"], 1)?;
                let as_lists = v.pop().is_some_and(|a| a.is_truthy());
                let id = v.pop().unwrap_or(Value::None);
                get_metadata(&handle, &id, as_lists)
            }
            "get_next_stream_item" => {
                let conn_id = args.ctx.connection_id();
                let v = args.bind(&["streamId"])?;
                let id = v.first().and_then(Value::as_str).unwrap_or_default();
                handle.shared.streams.next_item(id, conn_id)
            }
            "close_stream" => {
                let v = args.bind(&["streamId"])?;
                if let Some(id) = v.first().and_then(Value::as_str) {
                    handle.shared.streams.close(id);
                }
                Ok(Value::None)
            }
            other => Err(missing_method("DaemonObject", other, false)),
        }
    }
}

/// `DaemonObject.get_metadata(objectId, as_lists)`: unknown id -> `DaemonError("unknown
/// object")`.
pub(crate) fn get_metadata(
    handle: &DaemonHandle,
    id: &Value,
    as_lists: bool,
) -> Result<Value, Fault> {
    let obj = id.as_str().and_then(|id| handle.object(id));
    match obj {
        Some(obj) => {
            let meta = obj.metadata();
            if meta.methods.is_empty() && meta.attrs.is_empty() {
                // Pyro4 warns the same way: a client cannot use such an object.
                tracing::warn!("object {id:?} doesn't expose any methods or attributes");
            }
            Ok(meta.to_value(as_lists))
        }
        None => Err(Fault::pyro("DaemonError", "unknown object")),
    }
}

impl Dispatch for DaemonObject {
    fn type_name(&self) -> &str {
        "DaemonObject"
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            methods: METHODS.iter().map(|m| m.to_string()).collect(),
            oneway: Vec::new(),
            attrs: Vec::new(),
        }
    }

    fn check_method(&self, method: &str) -> Result<(), Fault> {
        if METHODS.contains(&method) {
            Ok(())
        } else {
            Err(missing_method("DaemonObject", method, false))
        }
    }

    fn call(&self, ctx: CallContext, method: &str, args: Vec<Value>, kwargs: Dict) -> CallFuture {
        CallFuture::Ready(self.run(ctx, method, args, kwargs).map(Outcome::Value))
    }

    fn get_attr(&self, _ctx: &CallContext, name: &str) -> Result<Value, Fault> {
        Err(unknown_attr("DaemonObject", name, METHODS.contains(&name)))
    }

    fn set_attr(&self, _ctx: &CallContext, name: &str, _value: Value) -> Result<Value, Fault> {
        Err(unknown_attr("DaemonObject", name, METHODS.contains(&name)))
    }
}
