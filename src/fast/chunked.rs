//! Finding the end of a chunked body as it streams past (RFC 9112 section 7.1), so
//! the fast path can forward chunks unchanged and know when the response is complete.

/// Finds the end of a chunked body as it streams past (RFC 9112 section 7.1).
#[derive(Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    size: u64,
    digits: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
}

impl Chunked {
    /// Takes the next bytes of the body; `Ok(Some(n))`: the body ended after `n` of them.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ()> {
        use ChunkState::*;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.size > u64::MAX >> 8 {
                            return Err(());
                        }
                        let v = (b as char).to_digit(16).ok_or(())?;
                        self.size = self.size * 16 + u64::from(v);
                        self.digits = true;
                    }
                    b';' | b' ' | b'\t' if self.digits => self.state = Ext,
                    b'\r' if self.digits => self.state = SizeLf,
                    _ => return Err(()),
                },
                Ext => {
                    if b == b'\r' {
                        self.state = SizeLf;
                    } else if b == b'\n' {
                        return Err(());
                    }
                }
                SizeLf => {
                    if b != b'\n' {
                        return Err(());
                    }
                    self.state = if self.size == 0 { TrailerStart } else { Data };
                }
                Data => {
                    let take = (self.size).min((data.len() - i) as u64);
                    self.size -= take;
                    i += take as usize;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    continue;
                }
                DataCr if b == b'\r' => self.state = DataLf,
                DataLf if b == b'\n' => {
                    self.state = Size;
                    self.digits = false;
                }
                DataCr | DataLf => return Err(()),
                TrailerStart => self.state = if b == b'\r' { EndLf } else { TrailerLine },
                TrailerLine => {
                    if b == b'\r' {
                        self.state = TrailerLf;
                    }
                }
                TrailerLf if b == b'\n' => self.state = TrailerStart,
                EndLf if b == b'\n' => return Ok(Some(i + 1)),
                TrailerLf | EndLf => return Err(()),
            }
            i += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_end_is_found_across_pieces() {
        let body = b"4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            let first = c.feed(&body[..split]).unwrap();
            let end = match first {
                Some(e) => e,
                None => split + c.feed(&body[split..]).unwrap().expect("end"),
            };
            assert_eq!(&body[end..], b"NEXT", "split at {split}");
        }
        assert!(Chunked::default().feed(b"zz\r\n").is_err());
        assert!(Chunked::default().feed(b"\r\n").is_err());
        assert!(Chunked::default().feed(b"4\r\nwikiXX").is_err());
    }
}
