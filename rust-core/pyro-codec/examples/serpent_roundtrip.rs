//! Differential-test helper: parse serpent documents from stdin and re-encode them.
//!
//! Request frames on stdin: one mode byte (bit 0 = indent, bit 1 = bytes_repr), a
//! big-endian u32 length, then that many bytes of serpent text. For each request one
//! response frame goes to stdout: a status byte (0 = ok, 1 = error), a big-endian u32
//! length, then the re-encoded document (header included) or the error message.
//! Used by interop-tests/test_serpent_differential.py against Python's serpent 1.43.

use pyro_codec::serpent::{self, EncodeOptions};
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
        let options = EncodeOptions {
            indent: mode & 1 != 0,
            bytes_repr: mode & 2 != 0,
        };
        encoded.clear();
        let result = serpent::from_slice(&doc)
            .and_then(|v| serpent::encode_into(&v, &options, &mut encoded));
        let (status, body): (u8, &[u8]) = match &result {
            Ok(()) => (0, &encoded),
            Err(e) => {
                encoded.clear();
                encoded.extend_from_slice(e.to_string().as_bytes());
                (1, &encoded)
            }
        };
        output.write_all(&[status])?;
        output.write_all(&(body.len() as u32).to_be_bytes())?;
        output.write_all(body)?;
        output.flush()?;
    }
}
