//! A bump arena in front of the system allocator.
//!
//! Allocation is a pointer bump inside a static arena and freeing is a
//! no-op (except that the most recent allocation can be grown or released
//! in place); allocations that do not fit fall back to the system
//! allocator. A fresh instance (the host's `warm_instances = 0`, or the
//! first call of a warm one) serves its call from the arena without growing
//! linear memory, which lets the host reuse the instance slot without
//! remapping memory. A warm instance serving many calls soon uses the arena
//! up; from then on every allocation is the system allocator's, freed
//! normally, so memory does not grow from call to call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

/// Bytes of the arena (part of the module's zero-initialized data: pages
/// that a call does not touch cost nothing).
const ARENA_BYTES: usize = 1 << 20;

#[repr(C, align(16))]
struct Arena {
    bytes: UnsafeCell<[u8; ARENA_BYTES]>,
    next: UnsafeCell<usize>,
}

// SAFETY: components run single-threaded; no two threads can reach the arena.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena {
    bytes: UnsafeCell::new([0; ARENA_BYTES]),
    next: UnsafeCell::new(0),
};

/// Bump allocation in the arena, the system allocator beyond it.
pub struct ArenaThenSystem;

impl ArenaThenSystem {
    fn base() -> usize {
        ARENA.bytes.get() as usize
    }

    fn owns(ptr: *mut u8) -> bool {
        let p = ptr as usize;
        (Self::base()..Self::base() + ARENA_BYTES).contains(&p)
    }
}

// SAFETY: every pointer handed out is either inside the arena, aligned as
// asked and disjoint from every other live allocation (the bump only moves
// forward, except to release or grow the latest block), or comes from
// `System`, to which it is returned.
unsafe impl GlobalAlloc for ArenaThenSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = unsafe { &mut *ARENA.next.get() };
        let start = (Self::base() + *next).next_multiple_of(layout.align()) - Self::base();
        match start.checked_add(layout.size()) {
            Some(end) if end <= ARENA_BYTES => {
                *next = end;
                (Self::base() + start) as *mut u8
            }
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::owns(ptr) {
            let next = unsafe { &mut *ARENA.next.get() };
            if ptr as usize - Self::base() + layout.size() == *next {
                *next = ptr as usize - Self::base();
            }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::owns(ptr) {
            let next = unsafe { &mut *ARENA.next.get() };
            let offset = ptr as usize - Self::base();
            let is_latest = offset + layout.size() == *next;
            if is_latest && offset + new_size <= ARENA_BYTES {
                *next = offset + new_size;
                return ptr;
            }
            if new_size <= layout.size() {
                return ptr;
            }
        }
        // Allocate anew, copy, free the old block.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
