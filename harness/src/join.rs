//! Running many futures in one task, in an order the simulation fixes.
//!
//! `futures::future::join_all` polls up to 30 futures in index order on
//! every wake-up, but from 31 on it switches to `FuturesOrdered`, which polls
//! them in the order they were *woken*. Under turmoil that order is not
//! always the seed's: rmcp keeps a connection's pending requests in a
//! `HashMap` (std's randomly keyed hasher), so when the connection dies,
//! their waiters are woken in an order that changes from process to process.
//! A client with 31 or more queries in flight then did not replay
//! (`check-determinism` failed on every seed).
//!
//! [`join_in_order`] keeps `join_all` exactly as it was for up to 30
//! futures (the existing scenarios' traces depend on its poll order) and,
//! beyond that, polls only the futures that were woken, always in index
//! order: as cheap per wake-up as `FuturesOrdered`, and as deterministic as
//! the small `join_all`.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures::{
    future::{JoinAll, join_all},
    task::AtomicWaker,
};

/// The most futures `join_all` polls all together in index order (its
/// `SMALL`, in futures-util 0.3).
pub(crate) const JOIN_ALL_SMALL: usize = 30;

/// Waits for every future, returning their outputs in order. See the
/// module documentation for the order in which they are polled.
pub(crate) fn join_in_order<F: Future>(futures: Vec<F>) -> JoinInOrder<F> {
    let kind = if futures.len() <= JOIN_ALL_SMALL {
        Kind::Few(Box::pin(join_all(futures)))
    } else {
        Kind::Many(Many::new(futures))
    };
    JoinInOrder { kind }
}

/// The future of [`join_in_order`].
#[must_use = "futures do nothing unless polled"]
pub(crate) struct JoinInOrder<F: Future> {
    kind: Kind<F>,
}

enum Kind<F: Future> {
    Few(Pin<Box<JoinAll<F>>>),
    Many(Many<F>),
}

// Nothing in a `JoinInOrder` is pinned in place: the futures live in boxes
// of their own, and outputs are never pinned.
impl<F: Future> Unpin for JoinInOrder<F> {}

impl<F: Future> Future for JoinInOrder<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().kind {
            Kind::Few(all) => all.as_mut().poll(cx),
            Kind::Many(many) => many.poll(cx),
        }
    }
}

impl<F: Future> std::fmt::Debug for JoinInOrder<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, pending) = match &self.kind {
            Kind::Few(_) => ("join_all", None),
            Kind::Many(many) => ("woken, in index order", Some(many.pending)),
        };
        f.debug_struct("JoinInOrder")
            .field("polls", &kind)
            .field("pending", &pending)
            .finish()
    }
}

/// Each future in its own box, with a waker that marks it woken.
struct Many<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
    wakers: Vec<Waker>,
    shared: Arc<Shared>,
    pending: usize,
}

struct Shared {
    /// One flag per future: woken since it was last polled.
    woken: Vec<AtomicBool>,
    /// The task polling the join.
    parent: AtomicWaker,
}

struct Child {
    shared: Arc<Shared>,
    index: usize,
}

impl Wake for Child {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.woken[self.index].store(true, Ordering::Release);
        self.shared.parent.wake();
    }
}

impl<F: Future> Many<F> {
    fn new(futures: Vec<F>) -> Self {
        let n = futures.len();
        let shared = Arc::new(Shared {
            // Every future is polled once at the start.
            woken: (0..n).map(|_| AtomicBool::new(true)).collect(),
            parent: AtomicWaker::new(),
        });
        let wakers = (0..n)
            .map(|index| {
                Waker::from(Arc::new(Child {
                    shared: shared.clone(),
                    index,
                }))
            })
            .collect();
        Self {
            futures: futures.into_iter().map(|f| Some(Box::pin(f))).collect(),
            outputs: (0..n).map(|_| None).collect(),
            wakers,
            shared,
            pending: n,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        self.shared.parent.register(cx.waker());
        // One pass in index order. A future woken during the pass by one
        // before it is polled later in this pass; by one after it, in the
        // next (its wake-up has already scheduled this task again).
        for index in 0..self.futures.len() {
            if !self.shared.woken[index].swap(false, Ordering::AcqRel) {
                continue;
            }
            let Some(future) = self.futures[index].as_mut() else {
                continue;
            };
            let mut child = Context::from_waker(&self.wakers[index]);
            if let Poll::Ready(output) = future.as_mut().poll(&mut child) {
                self.futures[index] = None;
                self.outputs[index] = Some(output);
                self.pending -= 1;
            }
        }
        if self.pending > 0 {
            return Poll::Pending;
        }
        Poll::Ready(
            self.outputs
                .iter_mut()
                .map(|o| o.take().expect("every future finished"))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use tokio::sync::oneshot;

    /// `n` futures that each wait for their own signal, log the index each
    /// time they are polled, and return it. The signals are sent in the
    /// reverse of index order, all at once, as rmcp's dropped `HashMap`
    /// may wake them.
    fn polled_order(n: usize) -> (Vec<usize>, Vec<usize>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let log = Arc::new(Mutex::new(Vec::new()));
            let mut senders = Vec::new();
            let mut futures = Vec::new();
            for index in 0..n {
                let (tx, mut rx) = oneshot::channel::<()>();
                senders.push(tx);
                let log = log.clone();
                futures.push(futures::future::poll_fn(move |cx| {
                    log.lock().unwrap().push(index);
                    match Pin::new(&mut rx).poll(cx) {
                        Poll::Ready(_) => Poll::Ready(index),
                        Poll::Pending => Poll::Pending,
                    }
                }));
            }
            let join = tokio::spawn(join_in_order(futures));
            tokio::task::yield_now().await; // every future polled once
            log.lock().unwrap().clear();
            for tx in senders.into_iter().rev() {
                drop(tx);
            }
            let outputs = join.await.unwrap();
            let order = std::mem::take(&mut *log.lock().unwrap());
            (outputs, order)
        })
    }

    #[test]
    fn many_futures_are_polled_in_index_order_however_they_were_woken() {
        let (outputs, order) = polled_order(64);
        assert_eq!(outputs, (0..64).collect::<Vec<_>>());
        // Each polled once more, in index order, though woken last to first.
        assert_eq!(order, (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn up_to_thirty_futures_are_polled_as_join_all_polls_them() {
        let (outputs, order) = polled_order(JOIN_ALL_SMALL);
        assert_eq!(outputs, (0..JOIN_ALL_SMALL).collect::<Vec<_>>());
        assert_eq!(order, (0..JOIN_ALL_SMALL).collect::<Vec<_>>());
    }

    #[test]
    fn only_the_woken_future_is_polled() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let polls = Arc::new(Mutex::new(vec![0u32; 40]));
            let mut senders = Vec::new();
            let mut futures = Vec::new();
            for index in 0..40 {
                let (tx, mut rx) = oneshot::channel::<()>();
                senders.push(Some(tx));
                let polls = polls.clone();
                futures.push(futures::future::poll_fn(move |cx| {
                    polls.lock().unwrap()[index] += 1;
                    Pin::new(&mut rx).poll(cx).map(|_| ())
                }));
            }
            let join = tokio::spawn(join_in_order(futures));
            tokio::task::yield_now().await;
            senders[7].take();
            tokio::task::yield_now().await;
            let counts = polls.lock().unwrap().clone();
            assert_eq!(counts[7], 2);
            assert!(counts.iter().enumerate().all(|(i, n)| i == 7 || *n == 1));
            senders.clear();
            assert_eq!(join.await.unwrap().len(), 40);
        });
    }

    #[test]
    fn no_futures_finish_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let empty: Vec<std::future::Ready<()>> = Vec::new();
        assert!(runtime.block_on(join_in_order(empty)).is_empty());
        let many: Vec<_> = (0..50).map(std::future::ready).collect();
        assert_eq!(
            runtime.block_on(join_in_order(many)),
            (0..50).collect::<Vec<_>>()
        );
    }
}
