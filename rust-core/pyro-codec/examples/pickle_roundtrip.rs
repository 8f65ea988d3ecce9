//! Differential-test helper: unpickle what Python pickled and pickle it again.
//!
//! Request frames on stdin: one mode byte, a big-endian u32 length, then that many bytes
//! of a pickle. Mode 2 to 5: decode the pickle and re-encode it with that protocol. Mode
//! 0: decode only and answer with `{:?}` of the value (for debugging). For each request
//! one response frame goes to stdout: a status byte (0 = ok, 1 = error), a big-endian u32
//! length, then the new pickle (or text) or the error message. Used by
//! interop-tests/test_pickle_differential.py against CPython's pickle and Pyro4 4.82.

use pyro_codec::pickle::{self, EncodeOptions};
use std::io::{self, Read, Write};

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut input = stdin.lock();
    let mut output = io::BufWriter::new(stdout.lock());
    let mut doc = Vec::new();
    let mut encoded = Vec::new();
    loop {
        let mut head = [0u8; 5];
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mode = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        doc.clear();
        input.by_ref().take(len as u64).read_to_end(&mut doc)?;
        encoded.clear();
        let result = pickle::from_slice(&doc).and_then(|v| {
            if mode == 0 {
                encoded.extend_from_slice(format!("{v:?}").as_bytes());
                Ok(())
            } else {
                pickle::encode_into(&v, &EncodeOptions { protocol: mode }, &mut encoded)
            }
        });
        let status: u8 = match &result {
            Ok(()) => 0,
            Err(e) => {
                encoded.clear();
                encoded.extend_from_slice(e.to_string().as_bytes());
                1
            }
        };
        output.write_all(&[status])?;
        output.write_all(&(encoded.len() as u32).to_be_bytes())?;
        output.write_all(&encoded)?;
        output.flush()?;
    }
}
