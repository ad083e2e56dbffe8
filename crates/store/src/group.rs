//! Group commit: one writer thread takes every request waiting (up to a limit), commits
//! them in one transaction with one sync, and only then answers each. The ledger's writer
//! and the vault's writer both read their queues through [`batches`].

use crossbeam_channel::Receiver;

/// The batches of a queue: each waits for one request, then takes whatever else is already
/// queued, up to `max` in all. Ends when every sender is gone and the queue is empty.
pub fn batches<T>(queue: &Receiver<T>, max: usize) -> Batches<'_, T> {
    Batches { queue, max: max.max(1) }
}

/// The iterator of [`batches`].
pub struct Batches<'q, T> {
    queue: &'q Receiver<T>,
    max: usize,
}

impl<T> Iterator for Batches<'_, T> {
    type Item = Vec<T>;

    fn next(&mut self) -> Option<Vec<T>> {
        let first = self.queue.recv().ok()?;
        let mut batch = vec![first];
        while batch.len() < self.max {
            match self.queue.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_what_is_waiting_up_to_the_limit() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let got: Vec<Vec<i32>> = batches(&rx, 4).collect();
        assert_eq!(got, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    }

    #[test]
    fn a_lone_request_is_committed_without_waiting_for_company() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer =
            std::thread::spawn(move || batches(&rx, 128).map(|b| b.len()).collect::<Vec<_>>());
        tx.send(1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(writer.join().unwrap(), vec![1, 1]);
    }
}
