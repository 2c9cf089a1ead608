//! A bounds-checked little-endian reader over a byte slice. Every read names the field it
//! reads, so an error can say which field at which byte offset of which file was bad.

use crate::error::{Error, Result};

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    file: &'a str,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], file: &'a str) -> Cursor<'a> {
        Cursor { buf, pos: 0, file }
    }

    pub fn at(buf: &'a [u8], file: &'a str, pos: usize) -> Cursor<'a> {
        Cursor { buf, pos, file }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn err(&self, field: &str, offset: usize, msg: impl Into<String>) -> Error {
        Error::format(self.file, field, offset as u64, msg)
    }

    pub fn bytes(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(
                field,
                self.pos,
                format!(
                    "needs {n} bytes but the file ends after {} (truncated?)",
                    self.remaining()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let b = self.bytes(N, field)?;
        Ok(b.try_into().expect("length checked"))
    }

    pub fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }
    pub fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A UTF-8 string of `len` bytes.
    pub fn utf8(&mut self, len: u64, field: &str) -> Result<String> {
        self.str(len, field).map(str::to_owned)
    }

    /// A UTF-8 string of `len` bytes, borrowed from the buffer.
    pub fn str(&mut self, len: u64, field: &str) -> Result<&'a str> {
        let start = self.pos;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.remaining())
            .ok_or_else(|| {
                self.err(
                    field,
                    start,
                    format!(
                        "string length {len} exceeds the {} bytes left in the file",
                        self.remaining()
                    ),
                )
            })?;
        let b = self.bytes(len, field)?;
        std::str::from_utf8(b)
            .map_err(|e| self.err(field, start, format!("string is not valid UTF-8 ({e})")))
    }
}
