//! A blocking facade over the async client, for programs without a tokio runtime.
//!
//! Each blocking object owns a current-thread runtime and drives its async twin with
//! `block_on` (the pattern of mini-redis' `blocking_client`). Do not use these from
//! inside an async context: `block_on` would panic there.

use crate::config::Config;
use crate::naming::{self, ListFilter, Registration};
use crate::proxy::{Batch, Proxy, RawReply, Reply};
use crate::{Error, Result};
use pyro_codec::{Dict, Value};
use pyro_wire::{Annotations, Uri};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Communication(format!("cannot start the runtime: {e}")))
}

/// Blocking version of [`Proxy`].
#[derive(Debug)]
pub struct BlockingProxy {
    inner: Proxy,
    rt: Runtime,
}

impl BlockingProxy {
    /// A proxy for a URI text with the process-wide configuration.
    pub fn new(uri: &str) -> Result<BlockingProxy> {
        Ok(BlockingProxy {
            inner: Proxy::new(uri)?,
            rt: runtime()?,
        })
    }

    /// A proxy with an explicit configuration.
    pub fn with_config(uri: Uri, config: Arc<Config>) -> Result<BlockingProxy> {
        Ok(BlockingProxy {
            inner: Proxy::with_config(uri, config)?,
            rt: runtime()?,
        })
    }

    /// Wrap an async proxy (it must not be connected yet: connections belong to the
    /// runtime that opened them).
    pub fn from_proxy(proxy: Proxy) -> Result<BlockingProxy> {
        let mut proxy = proxy;
        proxy.release();
        Ok(BlockingProxy {
            inner: proxy,
            rt: runtime()?,
        })
    }

    /// The async proxy, for its settings (timeout, HMAC key, serializer, ...).
    pub fn proxy(&self) -> &Proxy {
        &self.inner
    }

    /// The async proxy, mutably, for its setters.
    pub fn proxy_mut(&mut self) -> &mut Proxy {
        &mut self.inner
    }

    /// See [`Proxy::bind`].
    pub fn bind(&mut self) -> Result<bool> {
        self.rt.block_on(self.inner.bind())
    }

    /// See [`Proxy::release`].
    pub fn release(&mut self) {
        self.inner.release()
    }

    /// See [`Proxy::reconnect`].
    pub fn reconnect(&mut self, tries: u32) -> Result<()> {
        self.rt.block_on(self.inner.reconnect(tries))
    }

    /// See [`Proxy::call`].
    pub fn call(&mut self, method: &str, args: Vec<Value>, kwargs: Dict) -> Result<Value> {
        self.rt.block_on(self.inner.call(method, args, kwargs))
    }

    /// See [`Proxy::call_reply`].
    pub fn call_reply(&mut self, method: &str, args: Vec<Value>, kwargs: Dict) -> Result<Reply> {
        self.rt
            .block_on(self.inner.call_reply(method, args, kwargs))
    }

    /// See [`Proxy::call_oneway`].
    pub fn call_oneway(&mut self, method: &str, args: Vec<Value>, kwargs: Dict) -> Result<()> {
        self.rt
            .block_on(self.inner.call_oneway(method, args, kwargs))
    }

    /// See [`Proxy::invoke`].
    pub fn invoke(
        &mut self,
        object: Option<&str>,
        method: &str,
        args: Vec<Value>,
        kwargs: Option<Dict>,
        flags: u16,
    ) -> Result<Reply> {
        self.rt
            .block_on(self.inner.invoke(object, method, args, kwargs, flags))
    }

    /// See [`Proxy::connect_for_call`]: connects if needed and returns the object id a
    /// raw payload must name.
    pub fn connect_for_call(&mut self) -> Result<&str> {
        self.rt.block_on(self.inner.connect_for_call())
    }

    /// See [`Proxy::invoke_raw`]: one INVOKE with a payload serialized by the caller,
    /// the reply undecoded (None for oneway).
    pub fn invoke_raw(
        &mut self,
        flags: u16,
        serializer_id: u16,
        payload: &[u8],
        extra_annotations: Option<&Annotations>,
    ) -> Result<Option<RawReply>> {
        self.rt.block_on(
            self.inner
                .invoke_raw(flags, serializer_id, payload, extra_annotations),
        )
    }

    /// See [`Proxy::call_raw`]: [`BlockingProxy::invoke_raw`] with MAX_RETRIES retries.
    pub fn call_raw(
        &mut self,
        flags: u16,
        serializer_id: u16,
        payload: &[u8],
        extra_annotations: Option<&Annotations>,
    ) -> Result<Option<RawReply>> {
        self.rt.block_on(
            self.inner
                .call_raw(flags, serializer_id, payload, extra_annotations),
        )
    }

    /// See [`Proxy::get_attr`].
    pub fn get_attr(&mut self, name: &str) -> Result<Value> {
        self.rt.block_on(self.inner.get_attr(name))
    }

    /// See [`Proxy::set_attr`].
    pub fn set_attr(&mut self, name: &str, value: Value) -> Result<()> {
        self.rt.block_on(self.inner.set_attr(name, value))
    }

    /// See [`Proxy::ping`].
    pub fn ping(&mut self) -> Result<()> {
        self.rt.block_on(self.inner.ping())
    }

    /// See [`Proxy::get_metadata`].
    pub fn get_metadata(&mut self) -> Result<()> {
        self.rt.block_on(self.inner.get_metadata())
    }

    /// See [`Proxy::run_batch`].
    pub fn run_batch(&mut self, batch: Batch) -> Result<Vec<Result<Value>>> {
        self.rt.block_on(self.inner.run_batch(batch))
    }

    /// See [`Proxy::run_batch_oneway`].
    pub fn run_batch_oneway(&mut self, batch: Batch) -> Result<()> {
        self.rt.block_on(self.inner.run_batch_oneway(batch))
    }

    /// Call a method returning an iterator; iterate the result.
    pub fn call_stream(
        &mut self,
        method: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<BlockingItemStream<'_>> {
        match self
            .rt
            .block_on(self.inner.call_reply(method, args, kwargs))?
        {
            Reply::Stream(id) => Ok(BlockingItemStream {
                proxy: self,
                id,
                finished: false,
            }),
            Reply::Value(v) => Err(Error::Protocol(format!(
                "result of call is not an iterator but a {}",
                v.type_name()
            ))),
        }
    }

    /// See [`Proxy::set_timeout`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_timeout(timeout)
    }

    /// See [`Proxy::response_annotations`].
    pub fn response_annotations(&self) -> &Annotations {
        self.inner.response_annotations()
    }
}

/// Blocking remote iterator; an `Iterator` of `Result<Value>`. Dropping it early queues
/// `close_stream` for the proxy's next message.
#[derive(Debug)]
pub struct BlockingItemStream<'a> {
    proxy: &'a mut BlockingProxy,
    id: String,
    finished: bool,
}

impl BlockingItemStream<'_> {
    /// The stream id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stop early: sends `close_stream` now.
    pub fn close(mut self) -> Result<()> {
        self.finished = true;
        let BlockingProxy { inner, rt } = &mut *self.proxy;
        rt.block_on(inner.stream_close(&self.id))
    }
}

impl Iterator for BlockingItemStream<'_> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        if self.finished {
            return None;
        }
        let BlockingProxy { inner, rt } = &mut *self.proxy;
        match rt.block_on(inner.stream_next(&self.id)) {
            Ok(Some(v)) => Some(Ok(v)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                if !matches!(e, Error::Remote(_)) {
                    inner.close_stream_later(self.id.clone());
                }
                Some(Err(e))
            }
        }
    }
}

impl Drop for BlockingItemStream<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.proxy
                .inner
                .close_stream_later(std::mem::take(&mut self.id));
        }
    }
}

/// Blocking version of [`naming::NameServer`].
#[derive(Debug)]
pub struct BlockingNameServer {
    inner: naming::NameServer,
    rt: Runtime,
}

/// Blocking [`naming::locate_ns_with`] (pass `Config::global()` settings via
/// `Arc::new(Config::global().clone())` for Pyro4's defaults).
pub fn locate_ns(
    config: &Arc<Config>,
    host: Option<&str>,
    port: Option<u16>,
    broadcast: bool,
    hmac_key: Option<&[u8]>,
) -> Result<BlockingNameServer> {
    let rt = runtime()?;
    let inner = rt.block_on(naming::locate_ns_with(
        config, host, port, broadcast, hmac_key,
    ))?;
    Ok(BlockingNameServer { inner, rt })
}

impl BlockingNameServer {
    /// The async wrapper (for the proxy's settings).
    pub fn inner_mut(&mut self) -> &mut naming::NameServer {
        &mut self.inner
    }
    /// See [`naming::NameServer::ping`].
    pub fn ping(&mut self) -> Result<()> {
        self.rt.block_on(self.inner.ping())
    }
    /// See [`naming::NameServer::count`].
    pub fn count(&mut self) -> Result<i64> {
        self.rt.block_on(self.inner.count())
    }
    /// See [`naming::NameServer::lookup`].
    pub fn lookup(&mut self, name: &str) -> Result<Uri> {
        self.rt.block_on(self.inner.lookup(name))
    }
    /// See [`naming::NameServer::lookup_with_metadata`].
    pub fn lookup_with_metadata(&mut self, name: &str) -> Result<(Uri, Vec<String>)> {
        self.rt.block_on(self.inner.lookup_with_metadata(name))
    }
    /// See [`naming::NameServer::register`].
    pub fn register(
        &mut self,
        name: &str,
        uri: &str,
        safe: bool,
        metadata: Option<&[String]>,
    ) -> Result<()> {
        self.rt
            .block_on(self.inner.register(name, uri, safe, metadata))
    }
    /// See [`naming::NameServer::set_metadata`].
    pub fn set_metadata(&mut self, name: &str, metadata: &[String]) -> Result<()> {
        self.rt.block_on(self.inner.set_metadata(name, metadata))
    }
    /// See [`naming::NameServer::remove`].
    pub fn remove(
        &mut self,
        name: Option<&str>,
        prefix: Option<&str>,
        regex: Option<&str>,
    ) -> Result<i64> {
        self.rt.block_on(self.inner.remove(name, prefix, regex))
    }
    /// See [`naming::NameServer::list`].
    pub fn list(&mut self, filter: &ListFilter) -> Result<Vec<(String, String)>> {
        self.rt.block_on(self.inner.list(filter))
    }
    /// See [`naming::NameServer::list_with_metadata`].
    pub fn list_with_metadata(&mut self, filter: &ListFilter) -> Result<Vec<Registration>> {
        self.rt.block_on(self.inner.list_with_metadata(filter))
    }
    /// See [`naming::NameServer::list_raw`].
    pub fn list_raw(&mut self, filter: &ListFilter, return_metadata: bool) -> Result<Value> {
        self.rt
            .block_on(self.inner.list_raw(filter, return_metadata))
    }
}
