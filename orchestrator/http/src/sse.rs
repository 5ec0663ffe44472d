//! Response bodies as byte streams, and SSE events with a size cap.
//!
//! [`BodyStream`] yields a response's data, gives its connection back to the
//! pool when the body ends cleanly, and (for event streams) fails when no
//! byte has arrived for an idle timeout: turmoil's TCP never retransmits, so
//! a stream stalled by a lost segment would otherwise hang forever.
//! [`events`] parses SSE with a per-event byte cap applied before parsing.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use hyper::body::{Body, Incoming};
use sse_stream::{Error as SseError, Sse, SseStream};
use tokio::time::{Instant, Sleep};

use crate::{client::HttpClientError, pool::Loan};

/// The data of one response body.
#[derive(Debug)]
pub(crate) struct BodyStream {
    /// `None` once handed to a drain task (see `Drop`).
    body: Option<Incoming>,
    /// Given back to the pool at a clean end of the body; dropped (the
    /// connection closed) on an error.
    loan: Option<Loan>,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    done: bool,
}

/// What a body dropped before its end may still cost to save its
/// connection: rmcp stops reading an `initialize` SSE answer at the
/// response event, one chunk before the stream's end.
const DRAIN_BYTES_MAX: usize = 64 * 1024;
const DRAIN_WITHIN: Duration = Duration::from_millis(100);

impl BodyStream {
    /// The body of a response on `loan`'s connection. An empty body gives
    /// the connection back at once.
    pub(crate) fn new(body: Incoming, loan: Loan) -> Self {
        let mut stream = Self {
            body: Some(body),
            loan: Some(loan),
            idle: None,
            done: false,
        };
        if stream.body.as_ref().is_some_and(Body::is_end_stream) {
            stream.finish(true);
        }
        stream
    }

    /// Fails the stream when `after` passes without a byte.
    pub(crate) fn with_idle_timeout(mut self, after: Option<Duration>) -> Self {
        self.idle = after.map(|after| (after, Box::pin(tokio::time::sleep(after))));
        self
    }

    fn finish(&mut self, clean: bool) {
        self.done = true;
        let loan = self.loan.take();
        if clean && let Some(loan) = loan {
            loan.give_back();
        }
    }

    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<HttpClientError> {
        match &mut self.idle {
            Some((after, sleep)) => {
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(HttpClientError::Idle { after: *after })
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for BodyStream {
    /// A body dropped before its end: read what is left, within a small
    /// budget, so that the connection can be reused; past the budget the
    /// connection is closed.
    fn drop(&mut self) {
        let (Some(body), Some(loan)) = (self.body.take(), self.loan.take()) else {
            return;
        };
        if self.done {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut rest = Self {
                body: Some(body),
                loan: Some(loan),
                idle: None,
                done: false,
            };
            let mut read = 0_usize;
            let drained = tokio::time::timeout(DRAIN_WITHIN, async {
                while let Some(Ok(chunk)) = rest.next().await {
                    read += chunk.len();
                    if read > DRAIN_BYTES_MAX {
                        break;
                    }
                }
            })
            .await;
            if drained.is_err() || read > DRAIN_BYTES_MAX {
                rest.loan = None; // closes the connection
            }
            rest.done = true;
        });
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, HttpClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers carry nothing for us
                    };
                    if let Some((after, sleep)) = &mut this.idle {
                        sleep.as_mut().reset(Instant::now() + *after);
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Poll::Ready(Some(Err(error))) => {
                    this.finish(false);
                    return Poll::Ready(Some(Err(HttpClientError::Http(error))));
                }
                Poll::Ready(None) => {
                    this.finish(true);
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    let error = ready!(this.poll_idle(cx));
                    this.finish(false);
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

/// The SSE events of `body`, refusing any event whose retained bytes exceed
/// `max_event_bytes` (the stream then ends with an error).
pub(crate) fn events(
    body: BodyStream,
    max_event_bytes: usize,
) -> BoxStream<'static, Result<Sse, SseError>> {
    let mut limiter = EventSizeLimiter::new(max_event_bytes);
    let mut failed = false;
    let bounded = body.map(move |chunk| {
        let chunk = chunk?;
        if failed || limiter.observe(&chunk).is_err() {
            failed = true;
            return Err(HttpClientError::EventTooLarge {
                max_bytes: max_event_bytes,
            });
        }
        Ok(chunk)
    });
    // After an error the parser yields it and the stream must not go on.
    SseStream::from_bytes_stream(bounded)
        .scan(false, |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            *ended = item.is_err();
            futures::future::ready(Some(item))
        })
        .boxed()
}

/// Counts the bytes the SSE parser would retain for the current event, as
/// rmcp's own clients do (ported from rmcp 3.11
/// `transport/common/client_side_sse.rs`, which is crate-private there):
/// field lines count with one joining newline each, comment lines (the
/// server's keep-alive pings) count nothing once ended (but no line may
/// outgrow the cap while it arrives), a blank line ends the event.
#[derive(Debug)]
struct EventSizeLimiter {
    max: usize,
    retained: usize,
    line: usize,
    line_is_comment: bool,
    previous_was_cr: bool,
}

/// An event grew past the cap.
#[derive(Debug)]
struct TooLarge;

impl EventSizeLimiter {
    fn new(max: usize) -> Self {
        Self {
            max,
            retained: 0,
            line: 0,
            line_is_comment: false,
            previous_was_cr: false,
        }
    }

    fn observe(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        for &byte in chunk {
            if std::mem::take(&mut self.previous_was_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' => {
                    self.end_line()?;
                    self.previous_was_cr = true;
                }
                b'\n' => self.end_line()?,
                _ => {
                    if self.line == 0 {
                        self.line_is_comment = byte == b':';
                    }
                    self.line = self.line.saturating_add(1);
                    self.check()?;
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), TooLarge> {
        if self.line == 0 {
            self.retained = 0;
        } else if !self.line_is_comment {
            self.retained = self.retained.saturating_add(self.line).saturating_add(1);
        }
        self.line = 0;
        self.line_is_comment = false;
        self.check()
    }

    fn check(&self) -> Result<(), TooLarge> {
        if self.retained.saturating_add(self.line) > self.max {
            Err(TooLarge)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_one_event_at_a_time_and_ignores_comments() {
        let mut limiter = EventSizeLimiter::new(20);
        assert!(limiter.observe(b"data: 1234567890\n\n").is_ok());
        assert!(limiter.observe(b"data: 1234567890\r\n\r\n").is_ok());
        // A comment line adds nothing to the event once it ends...
        assert!(limiter.observe(b"data: 1234\n: ping\n: ping\n").is_ok());
        assert!(limiter.observe(b"\n").is_ok());
        // ...but no line of any kind may outgrow the cap.
        assert!(
            EventSizeLimiter::new(12)
                .observe(b": a long keep-alive comment")
                .is_err()
        );
        assert!(limiter.observe(b"data: 123456\ndata: 1234567").is_err());
    }

    #[test]
    fn a_split_crlf_counts_once() {
        let mut limiter = EventSizeLimiter::new(7);
        assert!(limiter.observe(b"data:1\r").is_ok());
        assert!(limiter.observe(b"\n\r\n").is_ok());
        assert_eq!(limiter.retained, 0);
    }
}
