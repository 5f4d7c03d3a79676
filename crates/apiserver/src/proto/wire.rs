//! Protobuf's wire format, the one place the server reads and writes it:
//! varints, field keys and length-delimited fields. The Kubernetes object codec
//! (`codec`), the watch-event frames (`mod.rs`) and the OpenAPI v2 document
//! (`schema::openapi_pb`) build on it.

use super::ProtoError;

/// Wire type of varints (`int32`, `int64`, `bool`, enums).
pub(crate) const VARINT: u8 = 0;
/// Wire type of 64-bit fixed-width values (`double`).
pub(crate) const FIXED64: u8 = 1;
/// Wire type of length-delimited values (strings, bytes, messages, packed lists).
pub(crate) const LEN: u8 = 2;
/// Wire type of 32-bit fixed-width values.
const FIXED32: u8 = 5;

/// One field's value as read off the wire.
pub(crate) enum Wire<'a> {
    /// A varint.
    Varint(u64),
    /// A fixed-width value (no Kubernetes message has one; read to skip it).
    Fixed,
    /// A length-delimited value.
    Bytes(&'a [u8]),
}

/// Reads the fields of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over a message's bytes.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Whether every byte was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One varint (also the elements of a packed list).
    pub(crate) fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or(ProtoError::Truncated)?;
            self.buf = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError::Malformed("a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field's number and value; `None` at the end of the message.
    pub(crate) fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let num = u32::try_from(key >> 3).map_err(|_| ProtoError::Malformed("field number"))?;
        let wire = match (key & 7) as u8 {
            VARINT => Wire::Varint(self.varint()?),
            FIXED64 => {
                self.take(8)?;
                Wire::Fixed
            }
            LEN => {
                let n =
                    usize::try_from(self.varint()?).map_err(|_| ProtoError::Malformed("length"))?;
                Wire::Bytes(self.take(n)?)
            }
            FIXED32 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return Err(ProtoError::Malformed("wire type")),
        };
        Ok(Some((num, wire)))
    }
}

/// A message being written.
#[derive(Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    /// One varint, without a key.
    pub(crate) fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    /// A field's key: its number and wire type.
    pub(crate) fn key(&mut self, num: u32, wire: u8) {
        self.varint((u64::from(num) << 3) | u64::from(wire));
    }

    /// A varint field (negative integers as their 64-bit two's complement).
    pub(crate) fn uint(&mut self, num: u32, v: u64) {
        self.key(num, VARINT);
        self.varint(v);
    }

    /// A fixed 64-bit field (little-endian bytes, as `double` is sent).
    pub(crate) fn fixed64(&mut self, num: u32, v: [u8; 8]) {
        self.key(num, FIXED64);
        self.0.extend_from_slice(&v);
    }

    /// A length-delimited field.
    pub(crate) fn bytes(&mut self, num: u32, b: &[u8]) {
        self.key(num, LEN);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// The bytes written so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The message's bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_as_written() {
        let mut w = Writer::default();
        w.uint(1, 300);
        w.uint(2, -5i64 as u64);
        w.bytes(3, b"abc");
        w.fixed64(4, 1.5f64.to_le_bytes());
        w.bytes(20_000, b"");
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.next().unwrap(), Some((1, Wire::Varint(300)))));
        assert!(matches!(r.next().unwrap(), Some((2, Wire::Varint(v))) if v as i64 == -5));
        assert!(matches!(r.next().unwrap(), Some((3, Wire::Bytes(b"abc")))));
        assert!(matches!(r.next().unwrap(), Some((4, Wire::Fixed))));
        assert!(matches!(
            r.next().unwrap(),
            Some((20_000, Wire::Bytes(b"")))
        ));
        assert!(r.next().unwrap().is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_and_overlong_input_is_an_error() {
        assert!(matches!(
            Reader::new(&[0x1a, 0x05, b'a']).next(),
            Err(ProtoError::Truncated)
        ));
        assert!(matches!(
            Reader::new(&[0xff; 12]).next(),
            Err(ProtoError::Malformed(_))
        ));
        assert!(Reader::new(&[0x0b]).next().is_err());
    }
}
