//! The test echo object of Pyro4 (`Pyro4.test.echoserver.EchoServer`), served by the
//! `pyro-echo` tool and used by tests: same methods, oneways and property.

use super::dispatch::{Fault, Outcome};
use super::exposed::Exposed;
use pyro_codec::pyrepr::repr as py_repr;
use pyro_codec::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The object name the echo server registers under.
pub const ECHO_OBJECT_NAME: &str = "test.echoserver";

/// How long `slow` and `oneway_slow` wait (5 s in Pyro4).
const SLOW: Duration = Duration::from_secs(5);

/// State of the echo object.
#[derive(Debug, Default)]
pub struct EchoState {
    verbose: AtomicBool,
}

impl EchoState {
    /// True when calls are printed to stdout.
    pub fn verbose(&self) -> bool {
        self.verbose.load(Ordering::Relaxed)
    }

    /// Print calls to stdout (Pyro4's `_verbose`).
    pub fn set_verbose(&self, on: bool) {
        self.verbose.store(on, Ordering::Relaxed);
    }

    fn log(&self, what: &str) {
        if self.verbose() {
            println!("{} - {what}", asctime());
        }
    }
}

/// Build the echo object. Its `shutdown` method stops the daemon serving the call.
pub fn echo_object(verbose: bool) -> Exposed<EchoState> {
    let state = EchoState::default();
    state.set_verbose(verbose);
    Exposed::new("EchoServer", state)
        .method("echo", |s, args| {
            let message = args.bind(&["message"])?.pop().unwrap_or(Value::None);
            s.log(&format!("echo: {}", py_repr(&message)));
            Ok(message)
        })
        .method("error", |s, args| -> Result<Value, Fault> {
            args.bind(&[])?;
            s.log("error: generating exception");
            Err(Fault::value_error(
                "expected error from echoserver error() method",
            ))
        })
        .method("error_with_text", |s, args| -> Result<Value, Fault> {
            args.bind(&[])?;
            s.log("error: generating exception");
            Err(Fault::value_error("the message of the error"))
        })
        .oneway("oneway_echo", |s, args| {
            let message = args.bind(&["message"])?.pop().unwrap_or(Value::None);
            s.log(&format!("oneway_echo: {}", py_repr(&message)));
            Ok("bogus return value")
        })
        .async_method("slow", |s, args| async move {
            args.bind(&[])?;
            s.log("slow: waiting a bit...");
            tokio::time::sleep(SLOW).await;
            s.log("slow: returning result");
            Ok(Value::str("Finally, an answer!"))
        })
        .raw_method("generator", |_s, args| {
            args.bind(&[])?;
            let items = ["one", "two", "three"]
                .into_iter()
                .map(|i| Ok(Value::str(i)));
            Ok(Outcome::Stream(Box::new(items)))
        })
        .method("nan", |_s, args| {
            args.bind(&[])?;
            Ok(f64::NAN)
        })
        .method("inf", |_s, args| {
            args.bind(&[])?;
            Ok(f64::INFINITY)
        })
        .async_oneway("oneway_slow", |s, args| async move {
            args.bind(&[])?;
            s.log("oneway_slow: waiting a bit...");
            tokio::time::sleep(SLOW).await;
            s.log("oneway_slow: returning result");
            Ok(Value::str("bogus return value"))
        })
        .method("__dunder__", |_s, args| {
            args.bind(&[])?;
            Ok("should be allowed (dunder)")
        })
        .method("shutdown", |s, args| {
            let ctx = args.ctx.clone();
            args.bind(&[])?;
            s.log("shutting down");
            // The reply is still sent; the daemon then stops (Pyro4's loopCondition).
            ctx.daemon().shutdown();
            Ok(Value::None)
        })
        .property(
            "verbose",
            |s| Value::Bool(s.verbose()),
            Some(|s: &EchoState, v: Value| {
                s.set_verbose(v.is_truthy());
                Ok(())
            }),
        )
}

/// `time.asctime()` (in UTC): `Sun Jun 20 23:21:05 1993`.
fn asctime() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {year}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1).clamp(0, 11) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(py_repr(&Value::str("hi")), "'hi'");
        assert_eq!(
            py_repr(&Value::List(vec![Value::Int(1), Value::None])),
            "[1, None]"
        );
    }

    #[test]
    fn asctime_shape() {
        let t = asctime();
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(&t[13..14], ":");
    }
}
