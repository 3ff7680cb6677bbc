//! A bounded list of spare objects (read buffers, splice pipes) that connections lend back
//! while idle and take again when they have bytes to move. One per thread: the event loop
//! is single-threaded. No IO.

use std::cell::RefCell;

pub struct Spare<T> {
    items: RefCell<Vec<T>>,
    cap: usize,
}

impl<T> Spare<T> {
    /// A list that keeps at most `cap` objects.
    pub const fn new(cap: usize) -> Self {
        Spare {
            items: RefCell::new(Vec::new()),
            cap,
        }
    }

    pub fn take(&self) -> Option<T> {
        self.items.borrow_mut().pop()
    }

    /// Keep `item` for the next taker, or drop it when the list is full.
    pub fn give(&self, item: T) {
        let mut items = self.items.borrow_mut();
        if items.len() < self.cap {
            items.push(item);
        }
    }

    /// Drop everything kept.
    pub fn clear(&self) {
        self.items.borrow_mut().clear();
    }

    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_its_cap_and_hands_back_the_last_given() {
        let spare = Spare::new(2);
        assert_eq!(spare.take(), None::<u8>);
        spare.give(1);
        spare.give(2);
        spare.give(3);
        assert_eq!(spare.len(), 2, "the third was dropped");
        assert_eq!(spare.take(), Some(2));
        assert_eq!(spare.take(), Some(1));
        assert!(spare.is_empty());
        spare.give(4);
        spare.clear();
        assert!(spare.is_empty());
    }
}
