//! Content digests of the results bucket's objects. Any executor credential may write the
//! bucket (NATS names objects by an encoded key, which permissions cannot scope), so what
//! the api serves is checked against digests that travel where the broker does scope the
//! writer: the manifest's digest rides on the attempt's final event (published under the
//! executor's own id on its own queues, recorded by the scheduler in PostgreSQL only for
//! an instance of that queue), and the manifest holds each file's digest.

use sha2::{Digest as _, Sha256};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The digest of `bytes`: `sha256:<hex>`.
pub fn digest(bytes: &[u8]) -> String {
    format(Sha256::digest(bytes).as_slice())
}

fn format(hash: &[u8]) -> String {
    format!("sha256:{}", data_encoding::HEXLOWER.encode(hash))
}

/// A reader that hashes what passes through it: [`Digesting::digest`] once read to the
/// end; with [`Digesting::expecting`], the end of input is an error unless the bytes read
/// have the expected digest and size (so a reader never sees altered content end well).
pub struct Digesting<R> {
    inner: R,
    hash: Sha256,
    read: u64,
    expected: Option<(String, u64)>,
}

impl<R> Digesting<R> {
    pub fn new(inner: R) -> Self {
        Digesting {
            inner,
            hash: Sha256::new(),
            read: 0,
            expected: None,
        }
    }

    /// Ends with an `InvalidData` error instead of end of input unless the content read
    /// has `digest` and `size`.
    pub fn expecting(inner: R, digest: String, size: u64) -> Self {
        Digesting {
            expected: Some((digest, size)),
            ..Digesting::new(inner)
        }
    }

    /// The digest of the bytes read so far (all of them, once read to the end).
    pub fn digest(&self) -> String {
        format(self.hash.clone().finalize().as_slice())
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Digesting<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            this.hash.update(new);
            this.read += new.len() as u64;
            if let Some((digest, size)) = &this.expected {
                // More than recorded is refused at once (nothing of this read is passed
                // on); the end of input only with the recorded digest and size.
                let end = new.is_empty() && room;
                if this.read > *size || (end && (this.read != *size || this.digest() != *digest)) {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "content ({}{} bytes, {}) is not what was recorded ({size} bytes, {digest})",
                            if end { "" } else { "over " },
                            this.read,
                            this.digest()
                        ),
                    )));
                }
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn digests_are_sha256_in_hex() {
        assert_eq!(
            digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn a_reader_hashes_what_it_passes_and_refuses_other_content() {
        let mut r = Digesting::new(&b"hello world"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, b"hello world");
        assert_eq!(r.digest(), digest(b"hello world"));

        let mut ok = Digesting::expecting(&b"hello world"[..], digest(b"hello world"), 11);
        ok.read_to_end(&mut Vec::new()).await.expect("same content");

        // Same size, other bytes: the end of input is an error.
        let mut forged = Digesting::expecting(&b"HELLO world"[..], digest(b"hello world"), 11);
        let err = forged
            .read_to_end(&mut Vec::new())
            .await
            .expect_err("forged");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut short = Digesting::expecting(&b"hello"[..], digest(b"hello world"), 11);
        assert!(short.read_to_end(&mut Vec::new()).await.is_err());

        // Longer: refused on the read that passes the recorded size, before its end, and
        // that read's bytes are not passed on.
        let long = b"hello world and more".repeat(100);
        let mut r = Digesting::expecting(&long[..], digest(b"hello world"), 11);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).await.expect("within the size"), 8);
        let err = r.read(&mut buf).await.expect_err("past the size");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
