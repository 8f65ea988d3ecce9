//! [`Exposed`]: a [`Dispatch`] built from a state value and closures, the Rust
//! counterpart of a Python class with `@expose`, `@oneway` and `@property` members.
//!
//! ```
//! use pyro_runtime::daemon::{Exposed, Fault};
//! use pyro_codec::Value;
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! struct Echo { verbose: AtomicBool }
//! let obj = Exposed::new("EchoServer", Echo { verbose: AtomicBool::new(false) })
//!     .method("echo", |_s, args| Ok(args.bind(&["message"])?.remove(0)))
//!     .method("error", |_s, _args| Err::<Value, _>(Fault::value_error("nope")))
//!     .property(
//!         "verbose",
//!         |s| Value::Bool(s.verbose.load(Ordering::Relaxed)),
//!         Some(|s: &Echo, v: Value| { s.verbose.store(v.is_truthy(), Ordering::Relaxed); Ok(()) }),
//!     );
//! # let _ = obj;
//! ```

use super::dispatch::{
    missing_method, unknown_attr, Args, CallContext, CallFuture, Dispatch, Fault, ItemIter,
    Metadata, Outcome,
};
use pyro_codec::{Dict, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

type SyncMethod<S> = Box<dyn Fn(&S, Args) -> Result<Outcome, Fault> + Send + Sync>;
type AsyncMethod<S> = Box<dyn Fn(Arc<S>, Args) -> CallFuture + Send + Sync>;
type Getter<S> = Box<dyn Fn(&S) -> Value + Send + Sync>;
type Setter<S> = Box<dyn Fn(&S, Value) -> Result<(), Fault> + Send + Sync>;

enum Method<S> {
    Sync(SyncMethod<S>),
    Async(AsyncMethod<S>),
}

struct Property<S> {
    get: Getter<S>,
    set: Option<Setter<S>>,
}

/// A state value plus the methods and properties it exposes. Build it with the chained
/// methods below and register it in a [`super::Daemon`].
///
/// Synchronous methods run inline on the connection's task, so they must be quick;
/// anything that waits belongs in [`Exposed::async_method`].
pub struct Exposed<S: Send + Sync + 'static> {
    type_name: Arc<str>,
    state: Arc<S>,
    methods: HashMap<String, Method<S>>,
    properties: HashMap<String, Property<S>>,
    meta: Metadata,
}

impl<S: Send + Sync + 'static> Exposed<S> {
    /// Expose `state` under a class name (used in error texts).
    pub fn new(type_name: &str, state: S) -> Self {
        Exposed::from_arc(type_name, Arc::new(state))
    }

    /// Expose shared state (the caller keeps a reference to it).
    pub fn from_arc(type_name: &str, state: Arc<S>) -> Self {
        Exposed {
            type_name: Arc::from(type_name),
            state,
            methods: HashMap::new(),
            properties: HashMap::new(),
            meta: Metadata::default(),
        }
    }

    /// The state.
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }

    fn add(mut self, name: &str, method: Method<S>, oneway: bool) -> Self {
        if !self.meta.methods.iter().any(|m| m == name) {
            self.meta.methods.push(name.to_string());
        }
        self.meta.oneway.retain(|m| m != name);
        if oneway {
            self.meta.oneway.push(name.to_string());
        }
        self.methods.insert(name.to_string(), method);
        self
    }

    /// A synchronous method returning a value (or anything convertible to a [`Value`]).
    pub fn method<R, F>(self, name: &str, f: F) -> Self
    where
        R: Into<Value>,
        F: Fn(&S, Args) -> Result<R, Fault> + Send + Sync + 'static,
    {
        self.add(name, sync_value(f), false)
    }

    /// A synchronous method marked oneway in the metadata (`@Pyro4.oneway`): clients do
    /// not wait for it, and its result is discarded when called with FLAGS_ONEWAY.
    pub fn oneway<R, F>(self, name: &str, f: F) -> Self
    where
        R: Into<Value>,
        F: Fn(&S, Args) -> Result<R, Fault> + Send + Sync + 'static,
    {
        self.add(name, sync_value(f), true)
    }

    /// An asynchronous method (may sleep, do IO, call other Pyro objects).
    pub fn async_method<Fut, F>(self, name: &str, f: F) -> Self
    where
        Fut: Future<Output = Result<Value, Fault>> + Send + 'static,
        F: Fn(Arc<S>, Args) -> Fut + Send + Sync + 'static,
    {
        self.add(name, async_value(f), false)
    }

    /// An asynchronous oneway method.
    pub fn async_oneway<Fut, F>(self, name: &str, f: F) -> Self
    where
        Fut: Future<Output = Result<Value, Fault>> + Send + 'static,
        F: Fn(Arc<S>, Args) -> Fut + Send + Sync + 'static,
    {
        self.add(name, async_value(f), true)
    }

    /// A method returning an iterator: the client gets a remote iterator whose items are
    /// produced on demand (Pyro4's item streaming of generators).
    pub fn generator<I, F>(self, name: &str, f: F) -> Self
    where
        I: Iterator<Item = Value> + Send + 'static,
        F: Fn(&S, Args) -> Result<I, Fault> + Send + Sync + 'static,
    {
        let m: SyncMethod<S> = Box::new(move |s, a| {
            let it = f(s, a)?;
            let boxed: ItemIter = Box::new(it.map(Ok));
            Ok(Outcome::Stream(boxed))
        });
        self.add(name, Method::Sync(m), false)
    }

    /// A method with full control over its [`Outcome`] (value or stream).
    pub fn raw_method<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(&S, Args) -> Result<Outcome, Fault> + Send + Sync + 'static,
    {
        self.add(name, Method::Sync(Box::new(f)), false)
    }

    /// An exposed property (`@property` with `@expose`), read-only when `set` is None.
    pub fn property<G, T>(mut self, name: &str, get: G, set: Option<T>) -> Self
    where
        G: Fn(&S) -> Value + Send + Sync + 'static,
        T: Fn(&S, Value) -> Result<(), Fault> + Send + Sync + 'static,
    {
        if !self.meta.attrs.iter().any(|a| a == name) {
            self.meta.attrs.push(name.to_string());
        }
        let set = set.map(|s| Box::new(s) as Setter<S>);
        self.properties.insert(
            name.to_string(),
            Property {
                get: Box::new(get),
                set,
            },
        );
        self
    }

    /// A read-only property.
    pub fn readonly<G>(self, name: &str, get: G) -> Self
    where
        G: Fn(&S) -> Value + Send + Sync + 'static,
    {
        self.property::<G, fn(&S, Value) -> Result<(), Fault>>(name, get, None)
    }
}

impl<S: Send + Sync + 'static> Dispatch for Exposed<S> {
    fn type_name(&self) -> &str {
        &self.type_name
    }

    fn metadata(&self) -> Metadata {
        self.meta.clone()
    }

    fn check_method(&self, method: &str) -> Result<(), Fault> {
        if self.methods.contains_key(method) {
            Ok(())
        } else {
            Err(missing_method(
                &self.type_name,
                method,
                self.properties.contains_key(method),
            ))
        }
    }

    fn call(&self, ctx: CallContext, method: &str, args: Vec<Value>, kwargs: Dict) -> CallFuture {
        let Some(m) = self.methods.get(method) else {
            return CallFuture::Ready(Err(missing_method(
                &self.type_name,
                method,
                self.properties.contains_key(method),
            )));
        };
        let args = Args {
            owner: self.type_name.clone(),
            method: method.to_string(),
            positional: args,
            kwargs,
            ctx,
        };
        match m {
            Method::Sync(f) => CallFuture::Ready(f(&self.state, args)),
            Method::Async(f) => f(self.state.clone(), args),
        }
    }

    fn get_attr(&self, _ctx: &CallContext, name: &str) -> Result<Value, Fault> {
        match self.properties.get(name) {
            Some(p) => Ok((p.get)(&self.state)),
            None => Err(unknown_attr(
                &self.type_name,
                name,
                self.methods.contains_key(name),
            )),
        }
    }

    fn set_attr(&self, _ctx: &CallContext, name: &str, value: Value) -> Result<Value, Fault> {
        match self.properties.get(name).and_then(|p| p.set.as_ref()) {
            Some(set) => set(&self.state, value).map(|()| Value::None),
            None => {
                let exists = self.methods.contains_key(name) || self.properties.contains_key(name);
                Err(unknown_attr(&self.type_name, name, exists))
            }
        }
    }
}

/// A synchronous method whose result becomes the reply value.
fn sync_value<S, R, F>(f: F) -> Method<S>
where
    S: Send + Sync + 'static,
    R: Into<Value>,
    F: Fn(&S, Args) -> Result<R, Fault> + Send + Sync + 'static,
{
    Method::Sync(Box::new(move |s, a| {
        f(s, a).map(|v| Outcome::Value(v.into()))
    }))
}

/// An asynchronous method whose result becomes the reply value.
fn async_value<S, Fut, F>(f: F) -> Method<S>
where
    S: Send + Sync + 'static,
    Fut: Future<Output = Result<Value, Fault>> + Send + 'static,
    F: Fn(Arc<S>, Args) -> Fut + Send + Sync + 'static,
{
    let m: AsyncMethod<S> = Box::new(move |s, a| {
        let fut = f(s, a);
        CallFuture::Pending(Box::pin(async move { fut.await.map(Outcome::Value) }))
    });
    Method::Async(m)
}
